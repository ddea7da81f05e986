import type { Clock } from "../../src/base/clock.js";

/**
 * A clock a test moves by hand: `clock` for the code under test (its waits resolve at once),
 * `now()` to read it as a Date, `advance(ms)` for the test.
 */
export function aClock(at: number): { clock: Clock; now: () => Date; advance: (ms: number) => number } {
  let now = at;
  return { clock: { now: () => now, sleep: async () => undefined }, now: () => new Date(now), advance: (ms: number) => (now += ms) };
}

/** A `Clock` whose time moves only when the test moves it. */
export interface ManualClock extends Clock {
  /** Moves the time on by `ms` and ends every sleep that is then due. */
  advance(ms: number): void;
  /** Moves the time to the end of the soonest pending sleep (ending it, and any due with it); returns how far it moved. */
  advanceToNext(): number;
  /** What every pending sleep has left, soonest first. */
  pending(): number[];
}

/**
 * A `Clock` for the gateway in a test that runs over real sockets: time stands still at `at` until
 * the test calls `advance`, so a sleep, a deadline or a Retry-After wait ends exactly when the test
 * says and never because the host was slow. Sleeps aborted by their signal are forgotten.
 */
export function aManualClock(at: number = Date.now()): ManualClock {
  let now = at;
  const sleepers = new Set<{ due: number; wake: () => void }>();
  const advance = (ms: number) => {
    now += ms;
    for (const sleeper of [...sleepers].sort((a, b) => a.due - b.due)) {
      if (sleeper.due > now) break;
      sleepers.delete(sleeper);
      sleeper.wake();
    }
  };
  return {
    now: () => now,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason as Error);
        if (ms <= 0) return resolve();
        const onAbort = () => {
          sleepers.delete(sleeper);
          reject(signal?.reason as Error);
        };
        const sleeper = {
          due: now + ms,
          wake: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        sleepers.add(sleeper);
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    advance,
    advanceToNext() {
      const [soonest] = [...sleepers].map((s) => s.due).sort((a, b) => a - b);
      if (soonest === undefined) throw new Error("aManualClock: nothing is sleeping");
      const moved = soonest - now;
      advance(moved);
      return moved;
    },
    pending: () => [...sleepers].map((s) => s.due - now).sort((a, b) => a - b),
  };
}

/**
 * The real clock, with every sleep it is asked for recorded (in ms, in order): for a test that lets
 * real time pass and then checks what was planned, never how long it took.
 */
export function aRecordingClock(clock: Clock): Clock & { readonly sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => clock.now(),
    sleep: (ms, signal) => {
      sleeps.push(ms);
      return clock.sleep(ms, signal);
    },
  };
}
