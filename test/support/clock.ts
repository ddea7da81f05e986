import type { Clock } from "../../src/base/clock.js";

/**
 * A clock a test moves by hand: `clock` for the code under test (its waits resolve at once),
 * `now()` to read it as a Date, `advance(ms)` for the test.
 */
export function aClock(at: number): { clock: Clock; now: () => Date; advance: (ms: number) => number } {
  let now = at;
  return { clock: { now: () => now, sleep: async () => undefined }, now: () => new Date(now), advance: (ms: number) => (now += ms) };
}
