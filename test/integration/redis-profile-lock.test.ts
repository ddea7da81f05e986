/**
 * Per-profile ordering across replicas: two serializers on separate connections (two "replicas")
 * never run tasks for one profile at the same time, take turns fairly, let a crashed holder's lock
 * lapse, fence off a holder that outlived its lock, and fail fast without Redis. And the Lua scripts
 * behind them, defined as commands on a connection that several users share. Every check is on
 * order and fences, never on how long something took.
 */
import { randomUUID } from "node:crypto";
import { afterAll, expect, it } from "vitest";
import { Redis } from "ioredis";
import { createRedisConnection, defineLuaCommands } from "../../src/redis/connection.js";
import { redisKeys } from "../../src/redis/keys.js";
import type { Fence } from "../../src/sessions/fencing.js";
import { RedisProfileLock, type RedisProfileLockOptions } from "../../src/sessions/redis-profile-lock.js";
import type { SessionRecord } from "../../src/sessions/record.js";
import { REDIS_URL, ThrowawayRedis, connect, deletePrefix, describeRedis, redisLedger, redisServerInstalled, suiteRedis, uniquePrefix } from "../support/redis.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function record(profileId: string, createdBy: string): SessionRecord {
  return {
    profileId,
    createdAt: new Date(),
    expiresAt: new Date(Date.now() + 3600_000),
    revokedAt: null,
    createdBy,
    revokedBy: null,
  };
}

describeRedis("per-profile ordering across replicas (Redis lock + fencing)", () => {
  const prefix = uniquePrefix("order");
  const connections: Redis[] = [];
  const replica = async (options: Partial<RedisProfileLockOptions> = {}) => {
    const connection = await connect();
    connections.push(connection);
    return {
      connection,
      lock: new RedisProfileLock(connection, { keyPrefix: prefix, ...options }),
      store: redisLedger(connection, prefix, 60_000),
    };
  };
  afterAll(async () => {
    for (const connection of connections) connection.disconnect();
    await deletePrefix(prefix);
  });

  it("never runs two tasks for one profile at once, across replicas, and alternates between them", async () => {
    const a = await replica();
    const b = await replica();
    const profileId = randomUUID();
    let inside = 0;
    let most = 0;
    const order: string[] = [];
    const task = (name: string) => async () => {
      inside += 1;
      most = Math.max(most, inside);
      await sleep(10);
      order.push(name);
      inside -= 1;
    };
    await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).lock.run(profileId, task(i % 2 === 0 ? "A" : "B"))));
    expect(most).toBe(1);
    expect(order).toHaveLength(16);
    // Fair: neither replica runs all of its queue while the other waits.
    const switches = order.filter((name, i) => i > 0 && name !== order[i - 1]).length;
    expect(switches).toBeGreaterThanOrEqual(8);
    // Different profiles do not wait for each other: each task finishes only once the other has
    // started, which two tasks run one after the other never would.
    let release = () => undefined as void;
    const bothStarted = new Promise<void>((resolve) => {
      let started = 0;
      release = () => {
        started += 1;
        if (started === 2) resolve();
      };
    });
    const meeting = async () => {
      release();
      await bothStarted;
    };
    await Promise.all([a.lock.run(randomUUID(), meeting), b.lock.run(randomUUID(), meeting)]);
  });

  it("keeps the lock while a slow task runs past the lock's TTL (renewal)", async () => {
    const a = await replica({ lockTtlMs: 300 });
    const b = await replica({ lockTtlMs: 300 });
    const profileId = randomUUID();
    const events: string[] = [];
    const fences: Fence[] = [];
    const slow = a.lock.run(profileId, async (fence) => {
      fences.push(fence);
      events.push("a starts");
      await sleep(900);
      events.push("a ends");
    });
    await sleep(50);
    await b.lock.run(profileId, async (fence) => {
      fences.push(fence);
      events.push("b starts");
    });
    await slow;
    expect(events).toEqual(["a starts", "a ends", "b starts"]);
    // One acquisition each, in that order: a renewal is no new turn.
    const [first, second] = fences as [Fence & { token: number }, Fence & { token: number }];
    expect(second.token).toBe(first.token + 1);
  });

  it("lets a crashed replica's lock lapse within its TTL", async () => {
    const b = await replica();
    const profileId = randomUUID();
    // A replica that died holding the lock: nobody renews or releases it.
    const lockKey = redisKeys(prefix).lock(profileId);
    await b.connection.set(lockKey, "dead-replica", "PX", 400);
    // The turn starts only once the dead replica's lock has lapsed: the lock is then this task's.
    const holder = await b.lock.run(profileId, async (fence) => ({ fence, holder: await b.connection.get(lockKey) }));
    expect(holder.holder).not.toBeNull();
    expect(holder.holder).not.toBe("dead-replica");
    expect(holder.fence).toMatchObject({ kind: "token", profileId });
  });

  it("fences off a holder that outlived its lock: its ledger write is refused and the newer state stays", async () => {
    // Renewal stops at once (maxHoldMs 0): a replica paused past its lock's TTL, as in a long GC pause.
    const a = await replica({ lockTtlMs: 200, maxHoldMs: 0 });
    const b = await replica({ lockTtlMs: 200 });
    const profileId = randomUUID();
    const stale = a.lock.run(profileId, async (fence) => {
      await sleep(500);
      await a.store.put(record(profileId, "stale-replica"), fence);
    });
    await sleep(250);
    await b.lock.run(profileId, (fence) => b.store.put(record(profileId, "newer-replica"), fence));
    await expect(stale).rejects.toMatchObject({ name: "LedgerError", kind: "fenced" });
    expect((await b.store.get(profileId))?.createdBy).toBe("newer-replica");
  });

  it("gives up with LedgerError busy when the lock stays taken past the wait", async () => {
    const a = await replica();
    const b = await replica({ acquireTimeoutMs: 200 });
    const profileId = randomUUID();
    const holding = a.lock.run(profileId, () => sleep(700));
    await sleep(30);
    let ran = false;
    await expect(
      b.lock.run(profileId, async () => {
        ran = true;
      }),
    ).rejects.toMatchObject({ name: "LedgerError", kind: "busy" });
    expect(ran).toBe(false);
    // The one that gave up left the line: the next caller is not held behind a ghost.
    expect(await b.connection.zcard(redisKeys(prefix).waiters(profileId))).toBe(0);
    await holding;
    await expect(b.lock.run(profileId, async () => "next")).resolves.toBe("next");
  });

  it("fails fast with LedgerError unavailable, without running the task, when Redis cannot be reached", async () => {
    const unreachable = createRedisConnection("redis://127.0.0.1:1");
    const lock = new RedisProfileLock(unreachable, { keyPrefix: prefix });
    try {
      let ran = false;
      await expect(
        lock.run(randomUUID(), async () => {
          ran = true;
        }),
      ).rejects.toMatchObject({ name: "LedgerError", kind: "unavailable" });
      expect(ran).toBe(false);
    } finally {
      unreachable.disconnect();
    }
  });
});

describeRedis("Lua scripts as commands of a shared connection", () => {
  const { prefix, opened, track } = suiteRedis("lua");
  const ECHO_KEY = { numberOfKeys: 1, lua: "return KEYS[1]" };

  it("lets several users define their commands on one connection, each as often as it likes", async () => {
    const connection = await opened();
    const serializers = [new RedisProfileLock(connection, { keyPrefix: prefix }), new RedisProfileLock(connection, { keyPrefix: prefix })];
    const stores = [redisLedger(connection, prefix, 60_000), redisLedger(connection, prefix, 60_000)];
    const profileId = randomUUID();
    await serializers[1]!.run(profileId, (fence) => stores[1]!.put(record(profileId, "second"), fence));
    await serializers[0]!.run(profileId, (fence) => stores[0]!.markRevoked(profileId, new Date(), "first", fence));
    expect(await stores[1]!.get(profileId)).toMatchObject({ createdBy: "second", revokedBy: "first" });
    // The keys are the ones REDIS_KEY_PREFIX names, unchanged.
    expect(await connection.exists(redisKeys(prefix).session(profileId), redisKeys(prefix).fence(profileId))).toBe(2);
  });

  it("refuses a name taken by a built-in command or by another script", async () => {
    const connection = await opened();
    expect(() => defineLuaCommands(connection, { get: ECHO_KEY })).toThrow(/get: the name is already taken/);
    const echo = defineLuaCommands(connection, { wsgTestEcho: ECHO_KEY });
    expect(defineLuaCommands(connection, { wsgTestEcho: { ...ECHO_KEY } })).toBe(echo);
    expect(() => defineLuaCommands(connection, { wsgTestEcho: { numberOfKeys: 1, lua: "return 1" } })).toThrow(/wsgTestEcho/);
    expect(await echo.wsgTestEcho("k")).toBe("k");
  });

  it("hands keys over as given, with ioredis's own keyPrefix added on a connection that has one", async () => {
    const plain = defineLuaCommands(await opened(), { wsgTestEcho: ECHO_KEY });
    expect(await plain.wsgTestEcho(`${prefix}k`)).toBe(`${prefix}k`);
    const prefixed = new Redis(REDIS_URL, { keyPrefix: prefix, maxRetriesPerRequest: 0 });
    track(prefixed);
    const echo = defineLuaCommands(prefixed, { wsgTestEcho: ECHO_KEY });
    expect(await echo.wsgTestEcho("k")).toBe(`${prefix}k`);
  });

  it.skipIf(!redisServerInstalled)("runs a script by its SHA1, and again after Redis forgot it (restart, SCRIPT FLUSH)", async () => {
    const server = await ThrowawayRedis.start();
    try {
      const echo = defineLuaCommands(await connect(server.url), { wsgTestEcho: ECHO_KEY });
      track(echo);
      expect(await echo.wsgTestEcho("before")).toBe("before");
      expect(await echo.wsgTestEcho("cached")).toBe("cached");
      await echo.script("FLUSH");
      expect(await echo.wsgTestEcho("after")).toBe("after");
      // The whole script on first use and after the NOSCRIPT; by its SHA1 in between.
      const stats = await echo.info("commandstats");
      expect(stats).toMatch(/cmdstat_eval:calls=2,/);
      expect(stats).toMatch(/cmdstat_evalsha:calls=2,.*failed_calls=1/);
    } finally {
      await server.kill();
    }
  });
});
