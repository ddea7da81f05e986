const WINDOW_MS = 60_000;
const SWEEP_AT = 10_000;

interface Window {
  start: number;
  current: number;
  previous: number;
}

/** The outcome of asking for one more mutation. */
export type QuotaDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * `CALLER_MUTATIONS_PER_MINUTE`: how many mutations one caller (`sub`) may start per rolling minute,
 * so that one caller cannot spend the organization's Deel budget. A sliding-window counter: O(1)
 * memory per caller, idle callers swept. `0` turns the quota off. Per process.
 */
export class CallerQuota {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  take(sub: string): QuotaDecision {
    if (this.perMinute === 0) return { allowed: true };
    const now = this.now();
    if (this.windows.size > SWEEP_AT) this.sweep(now);
    let window = this.windows.get(sub);
    if (window === undefined) {
      window = { start: now, current: 0, previous: 0 };
      this.windows.set(sub, window);
    }
    const elapsedWindows = Math.floor((now - window.start) / WINDOW_MS);
    if (elapsedWindows >= 1) {
      window.previous = elapsedWindows === 1 ? window.current : 0;
      window.current = 0;
      window.start += elapsedWindows * WINDOW_MS;
    }
    const intoWindow = (now - window.start) / WINDOW_MS;
    const estimate = window.previous * (1 - intoWindow) + window.current;
    if (estimate + 1 > this.perMinute) {
      // Waiting for the window to roll over is always enough: the previous count then weighs less.
      const retryAfterSeconds = Math.max(1, Math.ceil((window.start + WINDOW_MS - now) / 1000));
      return { allowed: false, retryAfterSeconds };
    }
    window.current += 1;
    return { allowed: true };
  }

  private sweep(now: number): void {
    for (const [sub, window] of this.windows) if (now - window.start >= 2 * WINDOW_MS) this.windows.delete(sub);
  }
}
