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

/**
 * A timer as a promise: resolves after `ms` (negative counts as 0), rejects with the signal's reason
 * as soon as it aborts (at once when it already has), and clears the timer then. `unref`: the
 * pending timer alone does not keep the process alive.
 */
function timerSleep(ms: number, signal: AbortSignal | undefined, unref: boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
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
    if (unref) timer.unref();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => timerSleep(ms, signal, false),
};

/**
 * Resolves once `clock.now()` has reached `at` (epoch ms); at once when it already has. Rejects like
 * `Clock.sleep` when `signal` aborts. The time is read again after every sleep: a timer that fires
 * early (a coarse timer, a test clock) sleeps the rest, one that fires late (a busy host) ends the
 * wait at once. Use it for waits that end at an instant, not after a duration. It relies on the
 * clock's promise: `now()` has moved on by `ms` when `sleep(ms)` resolves (a test clock whose sleeps
 * end at once must move its time too).
 */
export async function sleepUntil(clock: Clock, at: number, signal?: AbortSignal): Promise<void> {
  for (let left = at - clock.now(); left > 0; left = at - clock.now()) {
    await clock.sleep(left, signal);
  }
  if (signal?.aborted) throw signal.reason as Error;
}

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
  sleepInBackground: (ms, signal) => timerSleep(ms, signal, true),
};
