import { randomUUID } from "node:crypto";
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import { defineLuaCommands, type LuaCommand, type Redis, type RedisWithCommands } from "../redis/connection.js";
import { redisKeys } from "../redis/keys.js";
import { stepUntilAborted, type OutboundBudget } from "./budget.js";
import { DeelError, isDeelError } from "./errors.js";

export interface RedisBudgetOptions {
  /** Key prefix (`REDIS_KEY_PREFIX`); the window lives at `<prefix>deel-budget`. One prefix = one organization. */
  keyPrefix: string;
  /** Calls per rolling window (`DEEL_RATE_LIMIT_RPS`), for all replicas together. */
  rps: number;
  /** The window Deel counts over. Default 1000 ms. */
  windowMs?: number;
  /**
   * Added to the window so that calls stay a full window apart when they *arrive* at Deel, not only
   * when they leave: a call that leaves on time can be delayed on the way (event-loop lag, network)
   * more than the one `rps` calls later (`DEEL_RATE_LIMIT_MARGIN_MS`). Default 100 ms.
   */
  marginMs?: number;
  /**
   * This replica's clock: what deadlines are measured against, and how a caller sleeps until its
   * slot. Slots themselves are on Redis's clock (see RESERVE); only durations cross over. Default:
   * the real clock.
   */
  clock?: Clock;
}

/** Redis's clock, in ms, as every script reads it (replicas' clocks never matter). */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Extends a key's TTL to at least ARGV-given ms, never shortening it (PEXPIRE GT needs Redis 7). */
const KEEP_AT_LEAST = `
local function keepAtLeast(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
`;

/**
 * The budget's scripts, defined as commands on the connection (see `defineLuaCommands`). Two sorted
 * sets, both on Redis's clock: the plan (`deel-budget`: every call's booked start, past and future,
 * member = the call) and the departures (`deel-budget-left`: when calls actually left, over the last
 * window). See `RedisBudget`.
 */
const BUDGET_COMMANDS = {
  /**
   * Books the earliest start that keeps the plan within budget, for every replica at once: the later
   * of now and (the `limit`-th most recent booking + the window). Nothing is booked when the wait
   * would not fit in the caller's `max wait`. A booking for now leaves at once when the departures
   * allow it (one round trip for an idle budget).
   *
   * KEYS: plan, departures. ARGV: limit, window ms, max wait ms, member.
   * Returns {1, 0} (left now), {2, wait ms} (booked: call LEAVE after waiting that long) or
   * {0, wait ms} (nothing booked).
   */
  wsgBudgetReserve: {
    numberOfKeys: 2,
    lua: `${NOW}${KEEP_AT_LEAST}
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local slot = now
if count >= limit then
  local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  slot = math.max(now, tonumber(entry[2]) + window)
end
local wait = slot - now
if wait > tonumber(ARGV[3]) then return {0, wait} end
redis.call('ZADD', KEYS[1], slot, ARGV[4])
keepAtLeast(KEYS[1], wait + window + 1000)
if wait == 0 and redis.call('ZCARD', KEYS[2]) < limit then
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  keepAtLeast(KEYS[2], window + 1000)
  return {1, 0}
end
return {2, wait}
`,
  },

  /**
   * The moment of leaving: the call leaves now if fewer than `limit` calls left in the window ending
   * now (its departure is recorded at once); otherwise it is booked again for when the oldest of them
   * leaves the window, or, when that would not fit in its `max wait`, its booking is removed.
   *
   * KEYS: plan, departures. ARGV: limit, window ms, max wait ms, member.
   * Returns {1, 0} (left now), {2, wait ms} (booked again: call LEAVE after waiting that long) or
   * {0, wait ms} (no slot before the deadline; nothing booked).
   */
  wsgBudgetLeave: {
    numberOfKeys: 2,
    lua: `${NOW}${KEEP_AT_LEAST}
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[2])
if count < limit then
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  keepAtLeast(KEYS[2], window + 1000)
  return {1, 0}
end
local entry = redis.call('ZRANGE', KEYS[2], count - limit, count - limit, 'WITHSCORES')
local wait = tonumber(entry[2]) + window - now
if wait > tonumber(ARGV[3]) then
  redis.call('ZREM', KEYS[1], ARGV[4])
  return {0, wait}
end
redis.call('ZADD', KEYS[1], now + wait, ARGV[4])
keepAtLeast(KEYS[1], wait + window + 1000)
return {2, wait}
`,
  },

  /** Gives back a booking that was not used (the caller gave up). KEYS: plan, departures. ARGV: member. */
  wsgBudgetCancel: {
    numberOfKeys: 2,
    lua: `
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[1])
`,
  },
} satisfies Record<string, LuaCommand>;

function abortError(): DeelError {
  return new DeelError("unavailable", "The call to Deel was aborted by the caller while waiting for the organization's budget");
}

/**
 * The organization's Deel budget shared by every replica through Redis (`OutboundBudget`).
 *
 * Pacing is by the moment a call *leaves*, not the moment it was planned: one atomic script (RESERVE)
 * books the call's start in a shared plan, which keeps callers in order and tells at once whether a
 * slot fits the deadline (if not: `rate_limited` with `retryAfterSeconds`, nothing booked). The
 * caller sleeps until its start, and on waking a second script (LEAVE) lets it go only if fewer
 * than `rps` calls of any replica left in the window ending now, on Redis's clock, recording the
 * departure in the same step. Timers that fire late (a busy host, a paused replica) fire together;
 * LEAVE turns all but the allowed few back, booked again for when the window frees (or refused with
 * `rate_limited` when that is past the deadline). Every departure having checked the ones before it,
 * no window holds more than `rps` departures.
 *
 * If Redis cannot be consulted, the call fails at once with `unavailable`: the budget fails closed,
 * never as an unpaced burst.
 */
export class RedisBudget implements OutboundBudget {
  private readonly redis: RedisWithCommands<keyof typeof BUDGET_COMMANDS>;
  private readonly keys: [plan: string, departures: string];
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly clock: Clock;
  private waiting = 0;
  private closed = false;
  /** One per caller sleeping until its slot; aborted on close. */
  private readonly sleepers = new Set<AbortController>();

  constructor(redis: Redis, options: RedisBudgetOptions) {
    if (!Number.isInteger(options.rps) || options.rps < 1) throw new TypeError("RedisBudget: rps must be a positive integer");
    this.redis = defineLuaCommands(redis, BUDGET_COMMANDS);
    const keys = redisKeys(options.keyPrefix);
    this.keys = [keys.budget, keys.budgetDepartures];
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
      let [outcome, waitMs] = await this.run("wsgBudgetReserve", deadline, member, signal);
      // Each turn either leaves, fails, or sleeps until a departure leaves the window (waitMs > 0).
      while (outcome === Outcome.Booked) {
        // The slot on this replica's clock, read after the answer: a little late at worst, never early.
        const completed = await this.sleepUntil(this.clock.now() + waitMs, signal);
        if (!completed) {
          await this.redis.wsgBudgetCancel(...this.keys, member).catch(() => undefined);
          throw this.closed ? new DeelError("unavailable", "The gateway is shutting down") : abortError();
        }
        [outcome, waitMs] = await this.run("wsgBudgetLeave", deadline, member, signal);
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

  /**
   * Runs RESERVE or LEAVE for `member`; a Redis that cannot answer fails the call (`unavailable`).
   * The caller's signal (its deadline) ends the wait for the answer too: a slow Redis never holds a
   * call past its deadline (a booking the script may still make is given back, best effort).
   */
  private async run(command: "wsgBudgetReserve" | "wsgBudgetLeave", deadline: number, member: string, signal?: AbortSignal): Promise<[Outcome, number]> {
    // A duration, not a timestamp: replicas' clocks and Redis's may disagree, durations do not.
    const maxWaitMs = Math.floor(Math.max(0, deadline - this.clock.now()));
    let reply: [number, number];
    try {
      const answer = this.redis[command](...this.keys, this.limit, this.windowMs, maxWaitMs, member) as Promise<[number, number]>;
      reply = await stepUntilAborted(answer, signal, abortError, () => this.redis.wsgBudgetCancel(...this.keys, member));
    } catch (error) {
      if (isDeelError(error)) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new DeelError("unavailable", `The organization's shared Deel budget (Redis) cannot be consulted: ${reason}`, { cause: error });
    }
    return [Number(reply[0]), Number(reply[1])];
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

/** What RESERVE and LEAVE answer. */
const enum Outcome {
  Refused = 0,
  Left = 1,
  Booked = 2,
}
