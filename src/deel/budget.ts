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

/**
 * A shared budget's step (a Redis script, a PostgreSQL transaction), or the caller's signal, whichever
 * comes first: on abort this rejects with `aborted()` at once, so that a slow or blocked store never
 * holds a call past its deadline, and the step's late answer goes to `abandoned` (to give back a
 * booking it made), best effort.
 */
export async function stepUntilAborted<T>(
  step: Promise<T>,
  signal: AbortSignal | undefined,
  aborted: () => Error,
  abandoned: (answer: T) => Promise<unknown> | undefined,
): Promise<T> {
  if (signal === undefined) return step;
  let onAbort = (): void => undefined;
  const abort = new Promise<never>((_, reject) => {
    onAbort = () => reject(aborted());
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([step, abort]);
  } catch (error) {
    if (!signal.aborted) throw error;
    void step.then(abandoned).catch(() => undefined);
    throw aborted();
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
