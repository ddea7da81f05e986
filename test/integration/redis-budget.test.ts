/**
 * The organization's Deel budget shared through Redis: several budget instances, each on its own
 * connection (as separate replicas would be), together never start more than `rps` calls in any
 * rolling window; a call that cannot get a slot before its deadline fails at once; and an unreachable
 * Redis fails the call closed. The slots are read where they are kept, in Redis (on Redis's clock),
 * and the replicas' waits from the clock they were given: nothing here depends on how fast the host is.
 */
import { afterAll, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { systemClock, type Clock } from "../../src/base/clock.js";
import { RedisBudget } from "../../src/deel/redis-budget.js";
import { DeelError } from "../../src/deel/errors.js";
import { createRedisConnection } from "../../src/redis/connection.js";
import { redisKeys } from "../../src/redis/keys.js";
import { aRecordingClock } from "../support/clock.js";
import { connect, deletePrefix, describeRedis, uniquePrefix } from "../support/redis.js";
import { maxInAnyWindow } from "../support/windows.js";

describeRedis("the shared Redis budget", () => {
  const prefixes: string[] = [];
  const connections: Redis[] = [];
  const replicas = async (count: number, rps: number, prefix: string, options: { windowMs?: number; clock?: Clock } = {}): Promise<RedisBudget[]> => {
    const budgets: RedisBudget[] = [];
    for (let i = 0; i < count; i += 1) {
      const connection = await connect();
      connections.push(connection);
      budgets.push(new RedisBudget(connection, { keyPrefix: prefix, rps, marginMs: 100, ...options }));
    }
    return budgets;
  };
  /** The slots reserved in the organization's window, on Redis's clock, ascending. */
  const slots = async (prefix: string): Promise<number[]> => {
    const flat = await connections[connections.length - 1]!.zrange(redisKeys(prefix).budget, "0", "-1", "WITHSCORES");
    return flat.filter((_, i) => i % 2 === 1).map(Number);
  };
  const fresh = () => {
    const prefix = uniquePrefix("budget");
    prefixes.push(prefix);
    return prefix;
  };

  afterAll(async () => {
    for (const connection of connections) connection.disconnect();
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  it("lets three replicas together start at most rps calls in any rolling window, and no fewer than it allows", async () => {
    const rps = 10;
    const prefix = fresh();
    const budgets = await replicas(3, rps, prefix);
    const deadline = Date.now() + 30_000;
    const left: number[] = [];
    await Promise.all(Array.from({ length: 30 }, (_, i) => budgets[i % 3]!.acquire(deadline).then(() => left.push(Date.now()))));
    // Every call left (pacing, not starvation), never more than rps in a window.
    expect(left).toHaveLength(30);
    expect(maxInAnyWindow(left, 1000)).toBeLessThanOrEqual(rps);
    // The plan booked them a window (plus margin) apart, rps at a time.
    const reserved = await slots(prefix);
    expect(maxInAnyWindow(reserved, 1100)).toBeLessThanOrEqual(rps);
  });

  it("paces by the moment a call leaves: a replica whose timers fire 700 ms late cannot leave in a window another replica filled", async () => {
    const rps = 3;
    const prefix = fresh();
    // Replica A oversleeps every wait by 700 ms (a busy or paused host); replica B is punctual.
    const late: Clock = { now: () => systemClock.now(), sleep: (ms, signal) => systemClock.sleep(ms + 700, signal) };
    const [a] = await replicas(1, rps, prefix, { clock: late });
    const [b] = await replicas(1, rps, prefix);
    const deadline = Date.now() + 30_000;
    const left: number[] = [];
    await Promise.all(Array.from({ length: 18 }, (_, i) => (i % 2 === 0 ? a! : b!).acquire(deadline).then(() => left.push(Date.now()))));
    expect(left).toHaveLength(18);
    expect(maxInAnyWindow(left, 1000)).toBeLessThanOrEqual(rps);
  });

  it("fails at once with rate_limited and retryAfterSeconds when no slot fits the deadline, and reserves nothing", async () => {
    const prefix = fresh();
    const clock = aRecordingClock(systemClock);
    const [a, b] = await replicas(2, 2, prefix, { clock });
    await a!.acquire(clock.now() + 1000);
    await b!.acquire(clock.now() + 1000);
    expect(await slots(prefix)).toHaveLength(2);

    const error = await b!.acquire(clock.now() + 300).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DeelError);
    expect(error).toMatchObject({ kind: "rate_limited", retryAfterSeconds: 2 });
    // At once: it never slept, and it booked nothing.
    expect(clock.sleeps).toEqual([]);
    expect(await slots(prefix)).toHaveLength(2);

    // A deadline the next slot fits in: it sleeps until that slot, one window (plus margin) after the first.
    await a!.acquire(clock.now() + 2000);
    expect(clock.sleeps).toHaveLength(1);
    const [first, , third] = await slots(prefix);
    expect(third! - first!).toBe(1100);
  });

  it("gives back a reserved slot when the caller gives up while waiting", async () => {
    const prefix = fresh();
    const [budget] = await replicas(1, 1, prefix);
    await budget!.acquire(Date.now() + 1000);
    const controller = new AbortController();
    const waiting = budget!.acquire(Date.now() + 5000, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(budget!.queueDepth).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ kind: "unavailable" });
    expect(budget!.queueDepth).toBe(0);
    expect(await connections[connections.length - 1]!.zcard(redisKeys(prefix).budget)).toBe(1);
  });

  it("fails closed, at once, with unavailable when Redis cannot be reached: never an unpaced call", async () => {
    const unreachable = createRedisConnection("redis://127.0.0.1:1");
    const clock = aRecordingClock(systemClock);
    const budget = new RedisBudget(unreachable, { keyPrefix: fresh(), rps: 5, clock });
    try {
      for (let i = 0; i < 10; i += 1) {
        const error = await budget.acquire(clock.now() + 5000).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toMatchObject({ name: "DeelError", kind: "unavailable" });
      }
      // At once: no call waited for anything.
      expect(clock.sleeps).toEqual([]);
    } finally {
      unreachable.disconnect();
    }
  });
});
