import { randomUUID } from "node:crypto";
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import { defineLuaCommands, type LuaCommand, type Redis, type RedisWithCommands } from "../redis/connection.js";
import { redisKeys } from "../redis/keys.js";
import type { OutboundBudget } from "./budget.js";
import { DeelError } from "./errors.js";

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

/** The budget's scripts, defined as commands on the connection (see `defineLuaCommands`). */
const BUDGET_COMMANDS = {
  /**
   * Reserves the earliest call slot in the organization's rolling window, for every replica at once.
   * The window is a sorted set of slot times (Redis `TIME`, so replicas' clocks do not matter; slots
   * may lie in the future). A new slot is the later of now and (the `limit`-th most recent slot + the
   * window), which keeps every window of that length at ≤ `limit` slots. The slot is reserved only
   * when the wait fits in the caller's budget.
   *
   * KEYS: window. ARGV: limit, window ms, max wait ms, member.
   * Returns {1, wait ms} (reserved: start after waiting that long) or {0, wait ms} (nothing reserved).
   */
  wsgBudgetReserve: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local slot = now
if count >= limit then
  local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  slot = math.max(now, tonumber(entry[2]) + window)
end
local wait = slot - now
if wait > tonumber(ARGV[3]) then return {0, wait} end
redis.call('ZADD', KEYS[1], slot, ARGV[4])
redis.call('PEXPIRE', KEYS[1], wait + window + 1000)
return {1, wait}
`,
  },

  /** Gives back a reservation whose time has not come (the caller gave up). KEYS: window. ARGV: member. */
  wsgBudgetCancel: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > now then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`,
  },
} satisfies Record<string, LuaCommand>;

function abortError(): DeelError {
  return new DeelError("unavailable", "The call to Deel was aborted by the caller while waiting for the organization's budget");
}

/**
 * The organization's Deel budget shared by every replica through Redis (`OutboundBudget`).
 *
 * One atomic script per call reserves a slot in a rolling window (see RESERVE); the caller then
 * sleeps until its slot. If the slot would come after the caller's deadline, nothing is reserved and
 * the call fails at once with `rate_limited` and `retryAfterSeconds`. If Redis cannot be consulted,
 * the call fails at once with `unavailable`: the budget fails closed, never as an unpaced burst.
 */
export class RedisBudget implements OutboundBudget {
  private readonly redis: RedisWithCommands<keyof typeof BUDGET_COMMANDS>;
  private readonly key: string;
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
    this.key = redisKeys(options.keyPrefix).budget;
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
      // A duration, not a timestamp: replicas' clocks and Redis's may disagree, durations do not.
      const maxWaitMs = Math.max(0, deadline - this.clock.now());
      let reply: [number, number];
      try {
        reply = (await this.redis.wsgBudgetReserve(this.key, this.limit, this.windowMs, Math.floor(maxWaitMs), member)) as [number, number];
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new DeelError("unavailable", `The organization's shared Deel budget (Redis) cannot be consulted: ${reason}`, { cause: error });
      }
      const reserved = Number(reply[0]) === 1;
      const waitMs = Number(reply[1]);
      if (!reserved) {
        throw new DeelError("rate_limited", `The organization's Deel budget has no slot for ${waitMs} ms, past the call's deadline`, {
          retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
        });
      }
      if (waitMs <= 0) return;
      // The slot on this replica's clock, read after the answer: a little late at worst, never early.
      const completed = await this.sleepUntil(this.clock.now() + waitMs, signal);
      if (!completed) {
        await this.redis.wsgBudgetCancel(this.key, member).catch(() => undefined);
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
