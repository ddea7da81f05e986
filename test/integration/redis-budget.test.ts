/**
 * The organization's Deel budget shared through Redis: several budget instances, each on its own
 * connection (as separate replicas would be), together never start more than `rps` calls in any
 * rolling second; a call that cannot get a slot before its deadline fails at once; and an unreachable
 * Redis fails the call closed.
 */
import { afterAll, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { RedisBudget } from "../../src/deel/redis-budget.js";
import { DeelError } from "../../src/deel/errors.js";
import { createRedisConnection } from "../../src/redis/connection.js";
import { redisKeys } from "../../src/redis/keys.js";
import { connect, deletePrefix, describeRedis, uniquePrefix } from "../support/redis.js";
import { maxInAnyWindow } from "../support/windows.js";

describeRedis("the shared Redis budget", () => {
  const prefixes: string[] = [];
  const connections: Redis[] = [];
  const replicas = async (count: number, rps: number, prefix: string, marginMs = 100): Promise<RedisBudget[]> => {
    const budgets: RedisBudget[] = [];
    for (let i = 0; i < count; i += 1) {
      const connection = await connect();
      connections.push(connection);
      budgets.push(new RedisBudget(connection, { keyPrefix: prefix, rps, marginMs }));
    }
    return budgets;
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

  it("lets three replicas together start at most rps calls in any rolling second, and no fewer than it allows", async () => {
    const rps = 10;
    const budgets = await replicas(3, rps, fresh());
    const started: number[] = [];
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        await budgets[i % 3]!.acquire(Date.now() + 10_000);
        started.push(Date.now());
      }),
    );
    const elapsed = Date.now() - t0;
    const worst = maxInAnyWindow(started, 1000);
    expect(worst).toBeLessThanOrEqual(rps);
    // 30 calls at 10 per 1.1 s: the third batch starts at ~2.2 s; pacing, not starvation.
    expect(elapsed).toBeGreaterThanOrEqual(2 * 1100 - 50);
    expect(elapsed).toBeLessThan(3500);
  });

  it("fails at once with rate_limited and retryAfterSeconds when no slot fits the deadline, and reserves nothing", async () => {
    const prefix = fresh();
    const [a, b] = await replicas(2, 2, prefix);
    await a!.acquire(Date.now() + 1000);
    await b!.acquire(Date.now() + 1000);
    const key = redisKeys(prefix).budget;
    const inspector = connections[connections.length - 1]!;
    expect(await inspector.zcard(key)).toBe(2);

    const started = Date.now();
    const error = await b!.acquire(Date.now() + 300).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(300);
    expect(error).toBeInstanceOf(DeelError);
    expect(error).toMatchObject({ kind: "rate_limited", retryAfterSeconds: 2 });
    expect(await inspector.zcard(key)).toBe(2);

    // A deadline the next slot fits in: it waits for the slot instead.
    await a!.acquire(Date.now() + 2000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
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
    const budget = new RedisBudget(unreachable, { keyPrefix: fresh(), rps: 5 });
    try {
      const started = Date.now();
      for (let i = 0; i < 10; i += 1) {
        await expect(budget.acquire(Date.now() + 5000)).rejects.toMatchObject({ name: "DeelError", kind: "unavailable" });
      }
      expect(Date.now() - started).toBeLessThan(300);
    } finally {
      unreachable.disconnect();
    }
  });
});
