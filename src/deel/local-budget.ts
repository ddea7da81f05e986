/**
 * The organization's Deel budget, kept in this process: at most `rps` calls start in any rolling
 * window of one second (plus a small margin), in FIFO order.
 *
 * How it works: every `acquire` reserves the earliest start time that keeps the window within budget
 * — `max(now, reservations[n - rps] + window)` — and sleeps until then. Reservations never go
 * backwards, so callers start in the order they asked. A call whose start time would come after its
 * deadline reserves nothing and fails at once with `rate_limited`, its `retryAfterSeconds` being how
 * far ahead the queue is booked. A cancelled waiter keeps its reservation: its slot is wasted, never
 * double-spent (rare: the resilience layer only waits for a slot that fits its deadline).
 *
 * The margin exists because Deel counts a call when it *arrives*, and we count when it *leaves*:
 * two calls one window apart can arrive closer together when the first took longer on the way
 * (a fresh TLS connection, a busy event loop).
 */
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import type { OutboundBudget } from "./budget.js";
import { DeelError } from "./errors.js";

export interface LocalBudgetOptions {
  /** Calls allowed to start per rolling window (Deel: 5 per second per organization). */
  rps: number;
  /** The window Deel counts over. Default 1000 ms. */
  windowMs?: number;
  /** Added to the window as a safety margin (see above). Default 100 ms. */
  marginMs?: number;
  /** Where the time comes from, and how waiters sleep. Default: the real clock. */
  clock?: Clock;
}

/** See the module comment. */
export class LocalBudget implements OutboundBudget {
  private readonly rps: number;
  private readonly spacingMs: number;
  private readonly clock: Clock;
  /** Start times handed out (past and future), ascending; only the last `rps` matter. */
  private readonly reservations: number[] = [];
  /** One per call sleeping until its slot; aborting it ends the sleep with the abort's reason. */
  private readonly waiters = new Set<AbortController>();
  private closed = false;

  constructor(options: LocalBudgetOptions) {
    if (!Number.isInteger(options.rps) || options.rps < 1) throw new TypeError("LocalBudget: rps must be a positive integer");
    const windowMs = options.windowMs ?? 1000;
    const marginMs = options.marginMs ?? 100;
    if (!(windowMs > 0) || !(marginMs >= 0)) throw new TypeError("LocalBudget: windowMs must be positive and marginMs non-negative");
    this.rps = options.rps;
    this.spacingMs = windowMs + marginMs;
    this.clock = options.clock ?? systemClock;
  }

  /** Calls waiting for their slot. */
  get queueDepth(): number {
    return this.waiters.size;
  }

  /** The earliest start a call asking now would get (ms epoch); for tests and metrics. */
  nextSlot(): number {
    const now = this.clock.now();
    this.prune(now);
    return this.slotFor(now);
  }

  acquire(deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new DeelError("unavailable", "The outbound Deel budget is closed"));
    if (signal?.aborted) return Promise.reject(new DeelError("unavailable", "The call was aborted before it took a slot in the Deel budget"));
    const now = this.clock.now();
    this.prune(now);
    const at = this.slotFor(now);
    if (at > deadline) {
      // Fail fast: waiting could only end in a timeout. Tell the caller when the queue frees up.
      const retryAfterSeconds = Math.max(1, Math.ceil((at - now) / 1000));
      return Promise.reject(
        new DeelError("rate_limited", `The organization's Deel budget has no slot before the deadline (next in ${at - now}ms)`, {
          retryAfterSeconds,
        }),
      );
    }
    this.reservations.push(at);
    if (at <= now) return Promise.resolve();
    return this.wait(at, signal);
  }

  /** Rejects every waiter (`unavailable`) and refuses new calls. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of [...this.waiters]) this.cancel(waiter, "The outbound Deel budget closed while the call waited");
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Sleeps until the reserved slot `at`, as the clock reads it on waking (never earlier); the
   * caller's abort ends the wait with `unavailable`.
   */
  private async wait(at: number, signal: AbortSignal | undefined): Promise<void> {
    const waiter = new AbortController();
    // The reservation stays when the caller gives up: later callers were booked around it, so it is
    // spent, not reused.
    const onAbort = () => this.cancel(waiter, "The call was aborted while waiting for a slot in the Deel budget");
    this.waiters.add(waiter);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await sleepUntil(this.clock, at, waiter.signal);
    } catch (error) {
      throw waiter.signal.aborted ? waiter.signal.reason : error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.waiters.delete(waiter);
    }
  }

  /** Ends a waiter's sleep with `unavailable`; it leaves the queue at once. */
  private cancel(waiter: AbortController, message: string): void {
    this.waiters.delete(waiter);
    waiter.abort(new DeelError("unavailable", message));
  }

  private slotFor(now: number): number {
    const anchor = this.reservations.length >= this.rps ? this.reservations[this.reservations.length - this.rps] : undefined;
    return anchor === undefined ? now : Math.max(now, anchor + this.spacingMs);
  }

  /** Forgets reservations that no longer constrain anything (out of the window, or beyond the last `rps`). */
  private prune(now: number): void {
    const excess = this.reservations.length - this.rps;
    if (excess > 0) this.reservations.splice(0, excess);
    while (this.reservations.length > 0 && (this.reservations[0] as number) + this.spacingMs <= now) this.reservations.shift();
  }
}
