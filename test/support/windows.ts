/** The most timestamps that fall in any window [t, t + windowMs). */
export function maxInAnyWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end += 1) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start += 1;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

/** The shortest time between an arrival and the `rps`-th after it: Deel's window needs ≥ 1000 ms. */
export function tightestSpacing(times: number[], rps: number): number {
  const sorted = [...times].sort((x, y) => x - y);
  let tightest = Number.POSITIVE_INFINITY;
  for (let i = rps; i < sorted.length; i += 1) tightest = Math.min(tightest, (sorted[i] as number) - (sorted[i - rps] as number));
  return tightest;
}
