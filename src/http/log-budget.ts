import type { BackgroundClock } from "../base/clock.js";

/** How many warn and error lines the process writes, and how often it says how many it dropped. */
export interface LogBudgetSettings {
  /** Warn and error lines admitted per second, per process (`LOG_ERROR_LINES_PER_SECOND`); 0 admits all. */
  readonly errorLinesPerSecond: number;
  /** At most one "lines dropped" summary per this many ms, while lines are dropped (`LOG_DROPPED_SUMMARY_MS`). */
  readonly droppedSummaryMs: number;
}

/**
 * The per-process budget of warn and error lines: a fixed one-second window, read from the
 * injected clock, admits `errorLinesPerSecond` lines; the rest are dropped and counted. The first
 * drop after a summary starts a background wait of `droppedSummaryMs`; when it ends, `summarize`
 * is called with the count dropped since (so a flood gives one summary per period, and the last
 * one comes even when the flood stops). Lines below warn (audit lines among them) and fatal lines
 * are not counted here: the logger never asks.
 */
export class LogLineBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private admittedInWindow = 0;
  private dropped = 0;
  private since = 0;
  private summaryPending = false;

  constructor(
    private readonly settings: LogBudgetSettings,
    private readonly clock: BackgroundClock,
    private readonly summarize: (dropped: number, sinceMs: number) => void,
  ) {}

  /** True when one more warn or error line may be written now; false (and counted) otherwise. */
  admit(): boolean {
    const perSecond = this.settings.errorLinesPerSecond;
    if (perSecond === 0) return true;
    const now = this.clock.now();
    // A clock that moved backwards starts a new window too, rather than stall the log.
    if (now - this.windowStart >= 1000 || now < this.windowStart) {
      this.windowStart = now;
      this.admittedInWindow = 0;
    }
    if (this.admittedInWindow < perSecond) {
      this.admittedInWindow += 1;
      return true;
    }
    if (this.dropped === 0) this.since = now;
    this.dropped += 1;
    if (!this.summaryPending) {
      this.summaryPending = true;
      this.clock.sleepInBackground(this.settings.droppedSummaryMs).then(
        () => this.flush(),
        () => this.flush(),
      );
    }
    return false;
  }

  private flush(): void {
    this.summaryPending = false;
    const dropped = this.dropped;
    if (dropped === 0) return;
    this.dropped = 0;
    this.summarize(dropped, Math.max(0, this.clock.now() - this.since));
  }
}
