/**
 * Time, as the parts that pace and time out calls see it. Passed in, so that a test can drive it:
 * the default reads the global `Date.now` and `setTimeout` at every call, so vitest's fake timers
 * (`vi.useFakeTimers()`) drive it as well.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Resolves after `ms` (a negative `ms` counts as 0). Rejects with the signal's reason as soon as
   * `signal` aborts, at once when it already has; the timer is then cleared.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
