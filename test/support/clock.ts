/** A clock a test moves by hand: `now()` for the code under test, `advance(ms)` for the test. */
export function aClock(at: number): { now: () => Date; advance: (ms: number) => number } {
  let now = at;
  return { now: () => new Date(now), advance: (ms: number) => (now += ms) };
}
