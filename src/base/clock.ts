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

/**
 * A clock that can also wait in the background: for loops that last as long as the process (a
 * lease's renewal, the look for orphaned jobs), whose waits must never keep the process alive by
 * themselves. A fake clock implements `sleepInBackground` as its `sleep`.
 */
export interface BackgroundClock extends Clock {
  /** As `sleep`, except that the pending wait alone does not keep the process alive (an unref'd timer). */
  sleepInBackground(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock, with background waits. */
export const systemBackgroundClock: BackgroundClock = {
  now: () => systemClock.now(),
  sleep: (ms, signal) => systemClock.sleep(ms, signal),
  sleepInBackground: (ms, signal) =>
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
      timer.unref();
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
