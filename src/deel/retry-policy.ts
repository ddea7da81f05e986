/**
 * When a failed call to Deel is tried again, and after how long. Promises:
 *
 * - Retryable: `unavailable` (5xx, timeouts, connection errors) and `rate_limited` (429), for DELETE
 *   and POST alike (a POST re-sends its Idempotency-Key, so Deel replays a success instead of minting
 *   a second token; `POST /magic-link` has no key, and a second link is harmless: see resilient.ts);
 *   a garbled 2xx (`bad_response`) once per call. Nothing else, and never beyond
 *   `maxAttempts`.
 * - Waits: `Retry-After` when Deel sent it, plus up to 10 % jitter; otherwise exponential backoff with
 *   jitter, capped at `maxMs`. A wait that would not leave `reserveMs` before the deadline for the next
 *   attempt is not taken.
 * - A `rate_limited` error that ends a call always carries `retryAfterSeconds` (see `withRetryAfter`).
 *
 * No sleeping here: the resilience layer (resilient.ts) sleeps for what this returns.
 */
import type { Clock } from "../base/clock.js";
import { copyDeelError, type DeelError } from "./errors.js";

export interface RetryPolicyOptions {
  /** Attempts per call, the first included (≥ 1). */
  maxAttempts: number;
  /** First backoff, doubled per retry and jittered. */
  baseMs: number;
  /** Largest backoff without Retry-After. */
  maxMs: number;
  /** Least time the next attempt must have left before the deadline. */
  reserveMs: number;
  /** Where "now" comes from. */
  clock: Clock;
  /** A source of randomness in [0, 1). */
  random: () => number;
}

/** Which failures are retried, and the wait before the next attempt. */
export class RetryPolicy {
  constructor(private readonly options: RetryPolicyOptions) {}

  /** The wait before the next attempt, or undefined when the call must end with this error. */
  delayAfter(error: DeelError, attempt: number, garbledRetried: boolean, deadline: number): number | undefined {
    const retryable =
      error.kind === "unavailable" ||
      error.kind === "rate_limited" ||
      // A garbled success (truncated JSON, a 201 without a token…) may be a transient glitch, and a
      // retried POST is replayed by its key: one more try, never more.
      (error.kind === "bad_response" && !garbledRetried && error.status !== undefined && error.status >= 200 && error.status <= 299);
    if (!retryable || attempt >= this.options.maxAttempts) return undefined;
    const delay =
      error.retryAfterSeconds !== undefined
        ? Math.round(error.retryAfterSeconds * 1000 * (1 + 0.1 * this.options.random()))
        : this.backoff(attempt);
    // Only a wait that leaves the next attempt its reserve inside the deadline.
    if (this.options.clock.now() + delay + this.options.reserveMs > deadline) return undefined;
    return delay;
  }

  /** Exponential backoff with "equal jitter": between half and all of base · 2^(attempt-1), capped. */
  backoff(attempt: number): number {
    const ceiling = Math.min(this.options.maxMs, this.options.baseMs * 2 ** (attempt - 1));
    return Math.max(1, Math.round(ceiling / 2 + (ceiling / 2) * this.options.random()));
  }
}

/** The same error, with the retryAfterSeconds a RATE_LIMITED answer needs (integer ≥ 1). */
export function withRetryAfter(error: DeelError, fallbackMs: number): DeelError {
  if (error.kind !== "rate_limited" || error.retryAfterSeconds !== undefined) return error;
  return copyDeelError(error, { retryAfterSeconds: Math.max(1, Math.ceil(fallbackMs / 1000)) });
}
