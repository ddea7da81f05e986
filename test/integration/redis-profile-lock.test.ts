/**
 * Per-profile ordering across replicas on Redis: the shared contract (test/support/profile-lock-
 * contract.ts), and a crashed holder's lock lapsing by its TTL. And the Lua scripts behind them,
 * defined as commands on a connection that several users share.
 */
import { randomUUID } from "node:crypto";
import { afterAll, expect, it } from "vitest";
import { Redis } from "ioredis";
import { createRedisConnection, defineLuaCommands } from "../../src/redis/connection.js";
import { redisKeys } from "../../src/redis/keys.js";
import { RedisProfileLock, type RedisProfileLockOptions } from "../../src/sessions/redis-profile-lock.js";
import type { SessionRecord } from "../../src/sessions/record.js";
import { profileLockContract } from "../support/profile-lock-contract.js";
import { REDIS_URL, ThrowawayRedis, connect, deletePrefix, describeRedis, redisLedger, redisServerInstalled, suiteRedis, uniquePrefix } from "../support/redis.js";

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

  profileLockContract({
    replica,
    leftNoWaiter: async (profileId) => {
      expect(await connections[connections.length - 1]!.zcard(redisKeys(prefix).waiters(profileId))).toBe(0);
    },
    unreachable: () => {
      const unreachable = createRedisConnection("redis://127.0.0.1:1");
      return { lock: new RedisProfileLock(unreachable, { keyPrefix: prefix }), close: async () => unreachable.disconnect() };
    },
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
