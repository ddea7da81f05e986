import { SpanStatusCode, type Tracer } from "@opentelemetry/api";
import type { OutboundBudget } from "../deel/budget.js";
import { isDeelError } from "../deel/errors.js";

/**
 * The organization's Deel budget with each wait for a slot as its own span (`deel.budget.wait`),
 * the sibling before the attempt it paced: its length is the pacing delay. Refused waits record the
 * error's kind (`rate_limited` when no slot could be had in time, `unavailable` when the budget
 * could not be consulted).
 */
export class TracedBudget implements OutboundBudget {
  constructor(
    private readonly inner: OutboundBudget,
    private readonly tracer: Tracer,
  ) {}

  get queueDepth(): number {
    return this.inner.queueDepth;
  }

  async acquire(deadline: number, signal?: AbortSignal): Promise<void> {
    const span = this.tracer.startSpan("deel.budget.wait", { attributes: { "deel.budget.queue_depth": this.inner.queueDepth } });
    try {
      await this.inner.acquire(deadline, signal);
    } catch (error) {
      const kind = isDeelError(error) ? error.kind : "error";
      span.setAttribute("error.type", kind);
      span.setStatus({ code: SpanStatusCode.ERROR, message: kind });
      throw error;
    } finally {
      span.end();
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
