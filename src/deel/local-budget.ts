/**
 * The organization's Deel budget, kept in this process: at most `rps` calls *leave* in any rolling
 * window of one second (plus a small margin), in FIFO order.
 *
 * How it works, in two steps:
 *
 * 1. **Plan.** `acquire` books the earliest start that keeps the plan within budget —
 *    `max(now, reservations[n - rps] + window)` — so callers are served in the order they asked, and
 *    a call whose start would come after its deadline books nothing and fails at once with
 *    `rate_limited`, its `retryAfterSeconds` being how far ahead the queue is booked.
 * 2. **Leave.** A plan is only a plan: timers fire late on a busy host (or a paused process), and
 *    timers that fire late fire together. So when the caller wakes, the clock is read again and the
 *    call leaves only if fewer than `rps` calls *actually left* in the window ending now; the departure
 *    is recorded at that moment, with nothing awaited in between. Otherwise the call is booked again
 *    for the moment the oldest of those departures leaves the window, or, when that is past its
 *    deadline, fails then with `rate_limited`. Every departure having checked the ones before it,
 *    no window ever holds more than `rps` departures, whatever the event loop did.
 *
 * A cancelled waiter gives its booking back. The margin exists because Deel counts a call when it
 * *arrives*, and we count when it *leaves*: two calls one window apart can arrive closer together when
 * the first took longer on the way (a fresh TLS connection, the network).
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
  /** Start times booked (past and future), ascending: the plan. Only the last `rps` matter. */
  private readonly reservations: number[] = [];
  /** When calls actually left, ascending; only those within the window are kept. */
  private readonly departures: number[] = [];
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

  /** The earliest start a call asking now would be booked for (ms epoch); for tests and metrics. */
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
    // Fail fast: waiting could only end in a timeout. Tell the caller when the queue frees up.
    if (at > deadline) return Promise.reject(rateLimited(at - now));
    this.book(at);
    // The usual case, a free budget: leave now, without a turn of the event loop in between.
    // The booking stays in the plan, used.
    if (at <= now && this.leaveNow(now)) return Promise.resolve();
    return this.waitAndLeave(at, deadline, signal);
  }

  /** Rejects every waiter (`unavailable`) and refuses new calls. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of [...this.waiters]) this.cancel(waiter, "The outbound Deel budget closed while the call waited");
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Sleeps until the booked slot `at` (as the clock reads it on waking), then leaves if the
   * departures allow it, else books again (see the module comment). The caller's abort ends the wait
   * with `unavailable`; either way a booking that was not used is given back.
   */
  private async wait(booked: number, deadline: number, waiter: AbortController): Promise<void> {
    let at = booked;
    try {
      for (;;) {
        await sleepUntil(this.clock, at, waiter.signal);
        const now = this.clock.now();
        this.prune(now);
        if (this.leaveNow(now)) return; // the booking stays in the plan, used
        const next = this.departureAllowedAt(now);
        this.unbook(at);
        if (next > deadline) throw rateLimited(next - now);
        at = next;
        this.book(at);
      }
    } catch (error) {
      this.unbook(at);
      throw waiter.signal.aborted ? (waiter.signal.reason as Error) : error;
    }
  }

  private async waitAndLeave(at: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const waiter = new AbortController();
    const onAbort = () => this.cancel(waiter, "The call was aborted while waiting for a slot in the Deel budget");
    this.waiters.add(waiter);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.wait(at, deadline, waiter);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.waiters.delete(waiter);
    }
  }

  /** Records a departure at `now` when fewer than `rps` calls left in the window ending now. */
  private leaveNow(now: number): boolean {
    if (this.departureAllowedAt(now) > now) return false;
    this.departures.push(now);
    return true;
  }

  /** The earliest time (≥ now) at which a call may leave, given the departures so far. */
  private departureAllowedAt(now: number): number {
    const count = this.departures.length;
    if (count < this.rps) return now;
    return Math.max(now, (this.departures[count - this.rps] as number) + this.spacingMs);
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

  private book(at: number): void {
    let i = this.reservations.length;
    while (i > 0 && (this.reservations[i - 1] as number) > at) i -= 1;
    this.reservations.splice(i, 0, at);
  }

  /** Gives one booking at `at` back (a no-op once the plan has forgotten it). */
  private unbook(at: number): void {
    const i = this.reservations.lastIndexOf(at);
    if (i >= 0) this.reservations.splice(i, 1);
  }

  /** Forgets departures out of the window, and bookings that no longer constrain the plan. */
  private prune(now: number): void {
    while (this.departures.length > 0 && (this.departures[0] as number) + this.spacingMs <= now) this.departures.shift();
    const excess = this.departures.length - this.rps;
    if (excess > 0) this.departures.splice(0, excess);
    while (this.reservations.length > 0 && (this.reservations[0] as number) + this.spacingMs <= now) this.reservations.shift();
  }
}

function rateLimited(waitMs: number): DeelError {
  return new DeelError("rate_limited", `The organization's Deel budget has no slot before the deadline (next in ${waitMs}ms)`, {
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
  });
}
