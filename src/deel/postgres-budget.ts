import { randomUUID } from "node:crypto";
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import type { Pool, PoolClient } from "../postgres/connection.js";
import { stepUntilAborted, type OutboundBudget } from "./budget.js";
import { DeelError, isDeelError } from "./errors.js";

export interface PostgresBudgetOptions {
  /** Calls per rolling window (`DEEL_RATE_LIMIT_RPS`), for all replicas together. */
  rps: number;
  /** The window Deel counts over. Default 1000 ms. */
  windowMs?: number;
  /** Added to the window, as for the Redis budget (`DEEL_RATE_LIMIT_MARGIN_MS`). Default 100 ms. */
  marginMs?: number;
  /**
   * This replica's clock: what deadlines are measured against, and how a caller sleeps until its
   * slot. Slots and departures themselves are on PostgreSQL's clock; only durations cross over.
   * Default: the real clock.
   */
  clock?: Clock;
}

/** A call's moment (PostgreSQL's clock, epoch ms) and the call it belongs to. */
type Entry = [at: number, member: string];

/** The budget's row: the plan (every call's booked start) and when calls actually left. */
export interface BudgetState {
  readonly slots: Entry[];
  readonly departures: Entry[];
}

/** What RESERVE, LEAVE and CANCEL answer, as the Redis budget's scripts do. */
export enum Outcome {
  /** No slot before the deadline; nothing booked. */
  Refused = 0,
  /** The call leaves now; its departure is recorded. */
  Left = 1,
  /** Booked: the caller sleeps `waitMs`, then asks LEAVE. */
  Booked = 2,
}

/**
 * One decision on the row: what to write back (null: nothing), the outcome and the wait. A call that
 * leaves (`Left`) is not in `state.departures`: its departure is appended by the statement that
 * commits the decision, at PostgreSQL's time then (see `PostgresBudget.update`).
 */
export interface Decision {
  readonly state: BudgetState | null;
  readonly outcome: Outcome;
  readonly waitMs: number;
  /** The call that leaves now (`Left`): its departure is recorded as the decision commits. */
  readonly leaving?: string;
}

const byTime = (x: Entry, y: Entry) => x[0] - y[0];
const within = (entries: readonly Entry[], now: number, windowMs: number) => entries.filter(([at]) => at > now - windowMs).sort(byTime);

function insert(entries: Entry[], entry: Entry): Entry[] {
  const at = entries.findIndex(([time]) => time > entry[0]);
  entries.splice(at === -1 ? entries.length : at, 0, entry);
  return entries;
}

/**
 * RESERVE, the Redis budget's rule: forget slots and departures older than the window; the call's
 * start is the later of now and (the `limit`-th most recent slot + the window), which keeps the plan
 * at ≤ `limit` per window; nothing is booked when the wait does not fit in `maxWaitMs`. A start of
 * now leaves at once when fewer than `limit` calls left in the window ending now.
 */
export function reserve(state: BudgetState, now: number, limit: number, windowMs: number, maxWaitMs: number, member: string): Decision {
  const slots = within(state.slots, now, windowMs);
  const departures = within(state.departures, now, windowMs);
  const anchor = slots.length >= limit ? slots[slots.length - limit] : undefined;
  const start = anchor === undefined ? now : Math.max(now, anchor[0] + windowMs);
  const waitMs = start - now;
  if (waitMs > maxWaitMs) return { state: null, outcome: Outcome.Refused, waitMs };
  insert(slots, [start, member]);
  if (waitMs === 0 && departures.length < limit) return { state: { slots, departures }, outcome: Outcome.Left, waitMs: 0, leaving: member };
  return { state: { slots, departures }, outcome: Outcome.Booked, waitMs };
}

/**
 * LEAVE, the moment of leaving: the call leaves now if fewer than `limit` calls left in the window
 * ending now (its departure is recorded in the same step); otherwise it is booked again for when the
 * oldest of those leaves the window or, when that does not fit in `maxWaitMs`, its booking is removed.
 */
export function leave(state: BudgetState, now: number, limit: number, windowMs: number, maxWaitMs: number, member: string): Decision {
  const departures = within(state.departures, now, windowMs);
  const others = state.slots.filter(([, who]) => who !== member);
  if (departures.length < limit) return { state: { slots: state.slots, departures }, outcome: Outcome.Left, waitMs: 0, leaving: member };
  const waitMs = (departures[departures.length - limit] as Entry)[0] + windowMs - now;
  if (waitMs > maxWaitMs) return { state: { slots: others, departures }, outcome: Outcome.Refused, waitMs };
  return { state: { slots: insert(others, [now + waitMs, member]), departures }, outcome: Outcome.Booked, waitMs };
}

/** CANCEL: gives back the booking of a call that gave up (unless it already left). */
export function cancel(state: BudgetState, member: string): Decision {
  if (state.departures.some(([, who]) => who === member)) return { state: null, outcome: Outcome.Refused, waitMs: 0 };
  return { state: { slots: state.slots.filter(([, who]) => who !== member), departures: state.departures }, outcome: Outcome.Refused, waitMs: 0 };
}

function abortError(): DeelError {
  return new DeelError("unavailable", "The call to Deel was aborted by the caller while waiting for the organization's budget");
}

/** PostgreSQL's time now (not the transaction's start), epoch ms. */
const NOW_EXPR = "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
const NOW_MS = `SELECT ${NOW_EXPR} AS now`;

/**
 * The budget's one row (migrations 2 and 3), locked until the transaction ends, then PostgreSQL's
 * time: read in a statement of its own, after the lock is held, so a replica that waited for the
 * lock decides on the time it got it.
 */
const READ_LOCKED = `BEGIN; SELECT slots, departures FROM deel_budget WHERE id = 'organization' FOR UPDATE; ${NOW_MS}`;

/**
 * The organization's Deel budget shared by every replica through PostgreSQL (`OutboundBudget`), with
 * the Redis budget's rule: pacing is by the moment a call *leaves*, not the moment it was planned.
 *
 * RESERVE books the call's start in the shared plan (the row's `slots`), which keeps callers in
 * order and tells at once whether a slot fits the deadline (if not: `rate_limited` with
 * `retryAfterSeconds`, nothing booked). The caller sleeps until its start, and on waking LEAVE lets
 * it go only if fewer than `rps` calls of any replica left in the window ending now (the row's
 * `departures`, on PostgreSQL's clock), recording the departure in the same transaction. Timers that
 * fire late (a busy host, a paused replica) fire together; LEAVE turns all but the allowed few back,
 * booked again for when the window frees (or refused with `rate_limited` past the deadline). Every
 * departure having checked the ones before it, no window holds more than `rps` departures.
 *
 * Each step is one short transaction on the row (`SELECT … FOR UPDATE`, decide in TypeScript —
 * `reserve`, `leave`, `cancel` — then `UPDATE` and `COMMIT`), so replicas decide one after the
 * other, on PostgreSQL's clock (`clock_timestamp()`): replicas' clocks do not matter. A database
 * that cannot be consulted fails the call at once with `unavailable` (closed, never unpaced).
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
      let { outcome, waitMs } = await this.run(reserve, deadline, member, signal);
      // Each turn either leaves, fails, or sleeps until its slot or a departure leaves the window.
      while (outcome === Outcome.Booked) {
        // The slot on this replica's clock, read after the answer: a little late at worst, never early.
        const completed = await this.sleepUntil(this.clock.now() + waitMs, signal);
        if (!completed) {
          await this.update((state) => cancel(state, member)).catch(() => undefined);
          throw this.closed ? new DeelError("unavailable", "The gateway is shutting down") : abortError();
        }
        ({ outcome, waitMs } = await this.run(leave, deadline, member, signal));
      }
      if (outcome === Outcome.Refused) {
        throw new DeelError("rate_limited", `The organization's Deel budget has no slot for ${waitMs} ms, past the call's deadline`, {
          retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
        });
      }
    } finally {
      this.waiting -= 1;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const sleeper of [...this.sleepers]) sleeper.abort();
  }

  /** The slots booked now, ascending, on PostgreSQL's clock (for tests and metrics). */
  async reservedSlots(): Promise<number[]> {
    return (await this.read()).slots.map(([at]) => at).sort((x, y) => x - y);
  }

  /** When calls left, ascending, on PostgreSQL's clock, over the last window at least (for tests). */
  async departureTimes(): Promise<number[]> {
    return (await this.read()).departures.map(([at]) => at).sort((x, y) => x - y);
  }

  private async read(): Promise<BudgetState> {
    const { rows } = await this.pool.query<BudgetState>("SELECT slots, departures FROM deel_budget WHERE id = 'organization'");
    return rows[0] ?? { slots: [], departures: [] };
  }

  /**
   * Runs RESERVE or LEAVE for `member`; a database that cannot answer fails the call (`unavailable`).
   * The caller's signal (its deadline) ends the wait for the answer too, as on the Redis budget: a row
   * held by another transaction, or a pool with no free connection, never holds a call past its
   * deadline. The abandoned step still ends on its own (the statement timeout bounds it), and a
   * booking it made is given back, best effort.
   */
  private async run(step: typeof reserve | typeof leave, deadline: number, member: string, signal?: AbortSignal): Promise<Decision> {
    // A duration, not a timestamp: replicas' clocks and PostgreSQL's may disagree, durations do not.
    const maxWaitMs = Math.max(0, Math.floor(deadline - this.clock.now()));
    try {
      const answer = this.update((state, now) => step(state, now, this.limit, this.windowMs, maxWaitMs, member));
      return await stepUntilAborted(answer, signal, abortError, (decided) =>
        decided.outcome === Outcome.Booked ? this.update((state) => cancel(state, member)) : undefined,
      );
    } catch (error) {
      if (isDeelError(error)) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new DeelError("unavailable", `The organization's shared Deel budget (PostgreSQL) cannot be consulted: ${reason}`, { cause: error });
    }
  }

  /**
   * One transaction on the budget's row: `decide` sees the row and PostgreSQL's now (read once the
   * row is locked); what it decided is written when it changed anything. Two round trips: the read
   * (with BEGIN), then the write, COMMIT and PostgreSQL's time after the commit (one simple query,
   * the row as escaped literals), so a wait counts from the moment the decision became visible to
   * every replica, not from the read.
   *
   * A departure is recorded by that same query, at PostgreSQL's time when the UPDATE runs, not at the
   * read's: a replica paused between its read and its write (holding the row lock, so nobody decided
   * meanwhile) records the moment it really let the call go. The check made at the read still holds
   * then: no departure came in between, and the window ending later holds no more than before.
   */
  private async update(decide: (state: BudgetState, now: number) => Decision): Promise<Decision> {
    const client: PoolClient = await this.pool.connect();
    let broken = false;
    try {
      const results = (await client.query(READ_LOCKED)) as unknown as [unknown, { rows: BudgetState[] }, { rows: Array<{ now: string }> }];
      const row = results[1]?.rows[0];
      if (row === undefined) throw new Error("the budget's row is missing (migration 2 not applied?)");
      const readAt = Number(results[2]?.rows[0]?.now);
      const decided = decide({ slots: row.slots, departures: row.departures }, readAt);
      if (decided.state === null) {
        await client.query("ROLLBACK");
        return decided;
      }
      const literal = (value: unknown) => `${client.escapeLiteral(JSON.stringify(value))}::jsonb`;
      const departures =
        decided.leaving === undefined
          ? literal(decided.state.departures)
          : `${literal(decided.state.departures)} || jsonb_build_array(jsonb_build_array(${NOW_EXPR}, ${client.escapeLiteral(decided.leaving)}::text))`;
      const written = (await client.query(
        `UPDATE deel_budget SET slots = ${literal(decided.state.slots)}, departures = ${departures} WHERE id = 'organization'; COMMIT; ${NOW_MS}`,
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
