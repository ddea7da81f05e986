/**
 * The organization's Deel budget: Deel allows a few requests per rolling second per organization,
 * shared by every integration of it, and says so only with a 429. Every outbound call takes a slot
 * first, so that Deel never has to.
 */
export interface OutboundBudget {
  /**
   * Resolves when a call may start now. Rejects with `DeelError('rate_limited')` (with
   * `retryAfterSeconds`) at once when no slot can be had before `deadline` (epoch ms), and with
   * `DeelError('unavailable')` when the budget itself cannot be consulted (fail closed).
   */
  acquire(deadline: number, signal?: AbortSignal): Promise<void>;
  /** Calls waiting for a slot in this process (for metrics). */
  readonly queueDepth: number;
  close(): Promise<void>;
}
