import { randomUUID } from "node:crypto";
import { systemClock, type Clock } from "../base/clock.js";
import { defineLuaCommands, type LuaCommand, type Redis, type RedisWithCommands } from "../redis/connection.js";
import { redisKeys } from "../redis/keys.js";
import { LedgerError } from "./errors.js";
import type { Fence } from "./fencing.js";
import { ProfileQueue } from "./profile-queue.js";
import type { ProfileLock } from "./profile-lock.js";

export interface RedisProfileLockOptions {
  /** Key prefix (`REDIS_KEY_PREFIX`). */
  keyPrefix: string;
  /** Lock lifetime; renewed every third of it while the task runs. Default 5000 ms. */
  lockTtlMs?: number;
  /** Longest wait for a profile's lock before failing with LedgerError `busy`. Default 15 000 ms. */
  acquireTimeoutMs?: number;
  /**
   * Renewal stops after this long, so a task that never ends cannot hold a profile forever: the lock
   * then lapses and the task's ledger write is fenced off. Default 60 000 ms.
   */
  maxHoldMs?: number;
  /** Longest pause between two attempts while waiting. Default 25 ms. */
  maxPollMs?: number;
  /** Times the wait for a lock and the longest hold. Default: the system clock. */
  clock?: Clock;
}

/** A waiter that has not asked for this long has gone away (crashed, gave up) and loses its place. */
const WAITER_STALE_MS = 2_000;
/** The fence counter outlives any lock by far; it only needs to stay monotonic while locks are held. */
const FENCE_TTL_MS = 24 * 3600 * 1000;

/** The lock's scripts, defined as commands on the connection (see `defineLuaCommands`). */
const LOCK_COMMANDS = {
  /**
   * One attempt to take a profile's lock, fairly: waiters queue in arrival order (a sorted set scored
   * by Redis time), and only the oldest live waiter may take a free lock. A waiter that stops asking
   * for WAITER_STALE_MS is dropped. On success, INCRs the profile's fence counter and returns it.
   *
   * KEYS: lock, fence, waiters, waiterSeen. ARGV: token, lockTtlMs, fenceTtlMs, staleMs.
   * Returns {1, fence} (taken), {0, pttl} (held by someone else) or {0, 0} (an older waiter goes first).
   */
  wsgLockAcquire: {
    numberOfKeys: 4,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[4]))
for _, member in ipairs(stale) do
  redis.call('ZREM', KEYS[3], member)
  redis.call('ZREM', KEYS[4], member)
end
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then redis.call('ZADD', KEYS[3], now, ARGV[1]) end
redis.call('ZADD', KEYS[4], now, ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[4] * 5)
redis.call('PEXPIRE', KEYS[4], ARGV[4] * 5)
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then return {0, math.max(pttl, 1)} end
local head = redis.call('ZRANGE', KEYS[3], 0, 0)
if head[1] ~= ARGV[1] then return {0, 0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {1, fence}
`,
  },

  /** Leaves the waiting line (gave up). KEYS: waiters, waiterSeen. ARGV: token. */
  wsgLockLeave: {
    numberOfKeys: 2,
    lua: `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`,
  },

  /** Extends the lock only while it is still ours. KEYS: lock. ARGV: token, ttl. */
  wsgLockRenew: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`,
  },

  /** Compare-and-delete: releases the lock only while it is still ours. KEYS: lock. ARGV: token. */
  wsgLockRelease: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
  },
} satisfies Record<string, LuaCommand>;

/**
 * Per-profile ordering across replicas. Inside a process, the in-memory `ProfileQueue` keeps arrival
 * order; across processes, each task runs under a short Redis lock per profile:
 *
 * - acquire: `SET <prefix>lock:<id> <random token> NX PX <ttl>`, fairly (oldest waiter first), polled
 *   with a small backoff and bounded by `acquireTimeoutMs` (then LedgerError `busy`);
 * - hold: renewed (compare-and-PEXPIRE) every ttl/3 while the task runs, so a slow Deel call keeps
 *   the lock, while a crashed replica's lock lapses within one ttl;
 * - fence: each acquisition INCRs `<prefix>fence:<id>`; the task is handed that number as its fence
 *   (fencing.ts), and the ledger's writes are conditioned on it still being the latest: a replica
 *   that was paused past its lock's expiry cannot overwrite what the next holder recorded;
 * - release: compare-and-delete, so a late release never frees someone else's lock.
 *
 * Redis unreachable → LedgerError `unavailable` at once: no Deel call is made without ordering.
 */
export class RedisProfileLock implements ProfileLock {
  private readonly redis: RedisWithCommands<keyof typeof LOCK_COMMANDS>;
  private readonly local = new ProfileQueue();
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly lockTtlMs: number;
  private readonly acquireTimeoutMs: number;
  private readonly maxHoldMs: number;
  private readonly maxPollMs: number;
  private readonly clock: Clock;

  constructor(redis: Redis, options: RedisProfileLockOptions) {
    this.redis = defineLuaCommands(redis, LOCK_COMMANDS);
    this.keys = redisKeys(options.keyPrefix);
    this.lockTtlMs = options.lockTtlMs ?? 5_000;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 15_000;
    this.maxHoldMs = options.maxHoldMs ?? 60_000;
    this.maxPollMs = options.maxPollMs ?? 25;
    this.clock = options.clock ?? systemClock;
  }

  run<T>(profileId: string, task: (fence: Fence) => Promise<T>, deadline?: number): Promise<T> {
    return this.local.run(profileId, () => this.locked(profileId, task, deadline), deadline);
  }

  async close(): Promise<void> {
    await this.local.close();
  }

  private async locked<T>(profileId: string, task: (fence: Fence) => Promise<T>, deadline: number | undefined): Promise<T> {
    const token = randomUUID();
    const fence = await this.acquire(profileId, token, deadline);
    const lockKey = this.keys.lock(profileId);
    const startedAt = this.clock.now();
    const renewal = setInterval(() => {
      if (this.clock.now() - startedAt > this.maxHoldMs) {
        clearInterval(renewal);
        return;
      }
      // A failed renewal is not fatal here: if the lock is really lost, the fence refuses the write.
      this.redis.wsgLockRenew(lockKey, token, this.lockTtlMs).catch(() => undefined);
    }, Math.max(50, Math.floor(this.lockTtlMs / 3)));
    renewal.unref();
    try {
      return await task({ kind: "token", profileId, token: fence });
    } finally {
      clearInterval(renewal);
      // Best effort: if Redis is away, the lock lapses by itself within lockTtlMs.
      await this.redis.wsgLockRelease(lockKey, token).catch(() => undefined);
    }
  }

  /** Waits for the profile's lock; resolves to the fencing token. */
  private async acquire(profileId: string, token: string, given: number | undefined): Promise<number> {
    const keys = [this.keys.lock(profileId), this.keys.fence(profileId), this.keys.waiters(profileId), this.keys.waiterSeen(profileId)] as const;
    const deadline = Math.min(this.clock.now() + this.acquireTimeoutMs, given ?? Number.POSITIVE_INFINITY);
    let pause = 2;
    for (;;) {
      let reply: [number, number];
      try {
        reply = (await this.redis.wsgLockAcquire(...keys, token, this.lockTtlMs, FENCE_TTL_MS, WAITER_STALE_MS)) as [number, number];
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new LedgerError("unavailable", `Could not take the ordering lock for profile ${profileId} in Redis: ${reason}`, { cause: error });
      }
      const [taken, value] = reply;
      if (Number(taken) === 1) return Number(value);
      const left = deadline - this.clock.now();
      if (left <= 0) {
        await this.redis.wsgLockLeave(this.keys.waiters(profileId), this.keys.waiterSeen(profileId), token).catch(() => undefined);
        throw new LedgerError("busy", `Another operation on profile ${profileId} held its lock past this operation's deadline`);
      }
      const jitter = Math.random() * pause;
      await this.clock.sleep(Math.min(left, pause + jitter, Number(value) > 0 ? Number(value) + 1 : Number.POSITIVE_INFINITY));
      pause = Math.min(pause * 2, this.maxPollMs);
    }
  }
}
