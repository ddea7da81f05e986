import { randomUUID } from "node:crypto";
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import type { Pool, PoolClient } from "../postgres/connection.js";
import type { OutboundBudget } from "./budget.js";
import { DeelError } from "./errors.js";

export interface PostgresBudgetOptions {
  /** Calls per rolling window (`DEEL_RATE_LIMIT_RPS`), for all replicas together. */
  rps: number;
  /** The window Deel counts over. Default 1000 ms. */
  windowMs?: number;
  /** Added to the window, as for the Redis budget (`DEEL_RATE_LIMIT_MARGIN_MS`). Default 100 ms. */
  marginMs?: number;
  /**
   * This replica's clock: what deadlines are measured against, and how a caller sleeps until its
   * slot. Slots themselves are on PostgreSQL's clock; only durations cross over. Default: the real clock.
   */
  clock?: Clock;
}

/** A reserved call slot: when (PostgreSQL's clock, epoch ms) and whose. */
type Slot = [at: number, member: string];

/** What one reservation decided: the slots to keep, and how long the caller waits (null: no slot in time). */
export interface Reservation {
  readonly slots: Slot[];
  readonly waitMs: number;
  readonly reserved: boolean;
}

/**
 * The rule, as the Redis budget's script has it: forget slots older than the window; a new slot is
 * the later of now and (the `limit`-th most recent slot + the window), which keeps every window of
 * that length at ≤ `limit` slots; it is reserved only when the wait fits in `maxWaitMs`.
 */
export function reserveSlot(slots: readonly Slot[], now: number, limit: number, windowMs: number, maxWaitMs: number, member: string): Reservation {
  const kept = slots.filter(([at]) => at > now - windowMs).sort((x, y) => x[0] - y[0]);
  const anchor = kept.length >= limit ? kept[kept.length - limit] : undefined;
  const slot = anchor === undefined ? now : Math.max(now, anchor[0] + windowMs);
  const waitMs = slot - now;
  if (waitMs > maxWaitMs) return { slots: kept, waitMs, reserved: false };
  const at = kept.findIndex(([time]) => time > slot);
  kept.splice(at === -1 ? kept.length : at, 0, [slot, member]);
  return { slots: kept, waitMs, reserved: true };
}

function abortError(): DeelError {
  return new DeelError("unavailable", "The call to Deel was aborted by the caller while waiting for the organization's budget");
}

/** PostgreSQL's time now (not the transaction's start), epoch ms. */
const NOW_MS = "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now";

/** The budget's one row (migration 2), its slots and PostgreSQL's time, locked until the transaction ends. */
const READ_LOCKED =
  "BEGIN; SELECT slots, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now FROM deel_budget WHERE id = 'organization' FOR UPDATE";

/**
 * The organization's Deel budget shared by every replica through PostgreSQL (`OutboundBudget`), with
 * the Redis budget's booking rule: at most `rps` calls are planned in any rolling window (plus margin) across
 * replicas; a caller sleeps until its slot; a slot that would come after the caller's deadline is
 * not reserved and the call fails at once with `rate_limited` and `retryAfterSeconds`; a database
 * that cannot be consulted fails the call at once with `unavailable` (closed, never unpaced).
 *
 * One reservation is one short transaction on the budget's row (`SELECT … FOR UPDATE`, decide in
 * `reserveSlot`, `UPDATE`), so replicas reserve one after the other; slots are on PostgreSQL's
 * clock (`clock_timestamp()`), so replicas' clocks do not matter.
 *
 * Known gap: the plan is all it checks. Unlike `LocalBudget` and `RedisBudget`, a caller that wakes
 * does not check the calls that actually left in the window ending now, so timers that fire late
 * together (a paused or overloaded replica) can leave within one window (README: On PostgreSQL).
 */
export class PostgresBudget implements OutboundBudget {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly clock: Clock;
  private waiting = 0;
  private closed = false;
  /** One per caller sleeping until its slot; aborted on close. */
  private readonly sleepers = new Set<AbortController>();

  constructor(
    private readonly pool: Pool,
    options: PostgresBudgetOptions,
  ) {
    if (!Number.isInteger(options.rps) || options.rps < 1) throw new TypeError("PostgresBudget: rps must be a positive integer");
    this.limit = options.rps;
    this.windowMs = (options.windowMs ?? 1000) + (options.marginMs ?? 100);
    this.clock = options.clock ?? systemClock;
  }

  get queueDepth(): number {
    return this.waiting;
  }

  async acquire(deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new DeelError("unavailable", "The organization's Deel budget is closed (the gateway is shutting down)");
    if (signal?.aborted) throw abortError();
    this.waiting += 1;
    try {
      const member = randomUUID();
      // A duration, not a timestamp: replicas' clocks and PostgreSQL's may disagree, durations do not.
      const maxWaitMs = Math.max(0, Math.floor(deadline - this.clock.now()));
      let decided: Reservation;
      try {
        decided = await this.update((slots, now) => reserveSlot(slots, now, this.limit, this.windowMs, maxWaitMs, member));
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new DeelError("unavailable", `The organization's shared Deel budget (PostgreSQL) cannot be consulted: ${reason}`, { cause: error });
      }
      if (!decided.reserved) {
        throw new DeelError("rate_limited", `The organization's Deel budget has no slot for ${decided.waitMs} ms, past the call's deadline`, {
          retryAfterSeconds: Math.max(1, Math.ceil(decided.waitMs / 1000)),
        });
      }
      if (decided.waitMs <= 0) return;
      // The slot on this replica's clock, read after the answer: a little late at worst, never early.
      const completed = await this.sleepUntil(this.clock.now() + decided.waitMs, signal);
      if (!completed) {
        await this.update((slots, now) => {
          const mine = slots.find(([, who]) => who === member);
          // Gives back a reservation whose time has not come (the caller gave up).
          const kept = mine !== undefined && mine[0] > now ? slots.filter(([, who]) => who !== member) : slots;
          return { slots: kept, waitMs: 0, reserved: kept.length !== slots.length };
        }).catch(() => undefined);
        throw this.closed ? new DeelError("unavailable", "The gateway is shutting down") : abortError();
      }
    } finally {
      this.waiting -= 1;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const sleeper of [...this.sleepers]) sleeper.abort();
  }

  /** The slots reserved now, ascending, on PostgreSQL's clock (for tests and metrics). */
  async reservedSlots(): Promise<number[]> {
    const { rows } = await this.pool.query<{ slots: Slot[] }>("SELECT slots FROM deel_budget WHERE id = 'organization'");
    return (rows[0]?.slots ?? []).map(([at]) => at).sort((x, y) => x - y);
  }

  /**
   * One transaction on the budget's row: `decide` sees the slots and PostgreSQL's now; its slots are
   * written when it reserved. Two round trips: the read (with BEGIN), then the write, COMMIT and
   * PostgreSQL's time after the commit (one simple query, the slots as an escaped literal), so the
   * wait the caller gets counts from the moment its slot became visible to every replica, not from
   * the read: a reservation that took long to commit departs no later than its slot for that reason.
   */
  private async update(decide: (slots: Slot[], now: number) => Reservation): Promise<Reservation> {
    const client: PoolClient = await this.pool.connect();
    let broken = false;
    try {
      const results = (await client.query(READ_LOCKED)) as unknown as Array<{ rows: Array<{ slots: Slot[]; now: string }> }>;
      const row = results[1]?.rows[0];
      if (row === undefined) throw new Error("the budget's row is missing (migration 2 not applied?)");
      const readAt = Number(row.now);
      const decided = decide(row.slots, readAt);
      if (!decided.reserved) {
        await client.query("ROLLBACK");
        return decided;
      }
      const written = (await client.query(
        `UPDATE deel_budget SET slots = ${client.escapeLiteral(JSON.stringify(decided.slots))}::jsonb WHERE id = 'organization'; COMMIT; ${NOW_MS}`,
      )) as unknown as Array<{ rows: Array<{ now: string }> }>;
      const committedAt = Number(written[2]?.rows[0]?.now ?? readAt);
      return { ...decided, waitMs: Math.max(0, decided.waitMs - Math.max(0, committedAt - readAt)) };
    } catch (error) {
      broken = true;
      throw error;
    } finally {
      // A connection that failed mid-transaction is closed, never handed to the next caller.
      client.release(broken);
    }
  }

  /** Resolves true once the clock reads `at`, or false when aborted or closed first. */
  private async sleepUntil(at: number, signal?: AbortSignal): Promise<boolean> {
    const sleeper = new AbortController();
    const onAbort = () => sleeper.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.sleepers.add(sleeper);
    try {
      if (signal?.aborted) return false;
      await sleepUntil(this.clock, at, sleeper.signal);
      return true;
    } catch {
      return false;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.sleepers.delete(sleeper);
    }
  }
}
