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
    /** CALLER_MUTATIONS_PER_MINUTE: mutations one caller may send a minute (0: no quota). */
    readonly perMinute: number,
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
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(this.waitMs(window, now) / 1000)) };
    }
    window.current += 1;
    return { allowed: true };
  }

  /**
   * The least wait after which one more mutation fits: the estimate falls as the previous window's
   * weight fades, and at the roll-over the current count becomes the previous one.
   */
  private waitMs(window: Window, now: number): number {
    const room = this.perMinute - 1;
    const end = window.start + WINDOW_MS;
    // Within this window: previous·(1 − x) + current ≤ room.
    if (window.current <= room && window.previous > 0) {
      const x = 1 - (room - window.current) / window.previous;
      const at = window.start + Math.max(0, x) * WINDOW_MS;
      if (at < end) return Math.max(0, at - now);
    }
    // In the next window the current count weighs in as the previous one: current·(1 − x) ≤ room.
    const x = window.current === 0 ? 0 : Math.max(0, 1 - room / window.current);
    return end + x * WINDOW_MS - now;
  }

  private sweep(now: number): void {
    for (const [sub, window] of this.windows) if (now - window.start >= 2 * WINDOW_MS) this.windows.delete(sub);
  }
}
