import { trace } from "@opentelemetry/api";
import type { DeelObserver } from "../deel/events.js";

/**
 * What the resilience layer decides between attempts, as events on the span of the operation that
 * made the call (observers run inside the call, so the active span is that operation's):
 *
 * - `deel.retry`: an attempt failed and another follows after `deel.retry_in_ms`;
 * - `deel.refused`: the call ended without reaching Deel (`deel.refused_reason`: `breaker_open`,
 *   `budget` or `deadline`).
 *
 * Outside a traced request (no active span) nothing is recorded.
 */
export const deelSpanEvents: DeelObserver = (event) => {
  if (event.type !== "attempt_end" && event.type !== "rejected") return;
  const span = trace.getActiveSpan();
  if (span === undefined || !span.isRecording()) return;
  if (event.type === "attempt_end") {
    if (event.retryInMs === undefined) return;
    span.addEvent("deel.retry", { "deel.endpoint": event.endpoint, "deel.attempt": event.attempt, "deel.retry_in_ms": event.retryInMs, "error.type": event.outcome });
    return;
  }
  span.addEvent("deel.refused", { "deel.endpoint": event.endpoint, "deel.attempt": event.attempt, "deel.refused_reason": event.reason });
};
