/**
 * The ledger contract (test/support/store-contract.ts) on Redis, where two writers are two real
 * connections whose commands race at the server, and the guarantees only the Redis store makes: its
 * key layout, fencing, and failing fast while Redis is away.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { RedisSessionStore } from "../../src/sessions/redis-store.js";
import { LedgerError } from "../../src/sessions/errors.js";
import { runFenced } from "../../src/sessions/fencing.js";
import { createRedisConnection, redisKeys } from "../../src/redis/connection.js";
import { intentContract } from "../support/intent-contract.js";
import { describeRedis, freshRedisLedger, suiteRedis } from "../support/redis.js";
import { aSessionRecord as record, DAY, storeContract } from "../support/store-contract.js";

const RETENTION_MS = 7 * DAY;

// Its own connection per writer, a unique key prefix, every command counted.
describeRedis("the store contract on Redis", () => {
  const { prefix, opened } = suiteRedis("store");

  intentContract("Redis", () => freshRedisLedger(opened, RETENTION_MS));

  storeContract("Redis", { roundTrips: true, retention: true, concurrentWriters: true }, async () => {
    const connection = await opened();
    const issued: string[] = [];
    const send = connection.sendCommand.bind(connection);
    vi.spyOn(connection, "sendCommand").mockImplementation((command, stream) => {
      issued.push(command.name.toLowerCase());
      return send(command, stream);
    });
    const keys = redisKeys(prefix);
    return {
      store: new RedisSessionStore(connection, { keyPrefix: prefix, retentionMs: RETENTION_MS }),
      otherWriter: async () => new RedisSessionStore(await opened(), { keyPrefix: prefix, retentionMs: RETENTION_MS }),
      // Redis expires keys by its own clock, so records are written at the real time.
      now: () => Date.now(),
      commands: () => issued,
      remainingTtlMs: (profileId) => connection.pttl(keys.session(profileId)),
      withRetention: async (retentionMs) => new RedisSessionStore(await opened(), { keyPrefix: prefix, retentionMs }),
      retentionMs: RETENTION_MS,
      close: async () => undefined,
    };
  });

  describe("Redis-only guarantees", () => {
    it("keeps one readable JSON string per profile under the prefix", async () => {
      const connection = await opened();
      const store = new RedisSessionStore(connection, { keyPrefix: prefix, retentionMs: RETENTION_MS });
      const written = record();
      await store.put(written);
      const raw = await connection.get(`${prefix}session:${written.profileId}`);
      expect(JSON.parse(raw!)).toEqual({
        profileId: written.profileId,
        createdAt: written.createdAt.toISOString(),
        expiresAt: written.expiresAt.toISOString(),
        revokedAt: null,
        createdBy: "caller-1",
        revokedBy: null,
      });
    });

    it("refuses a write whose fencing token is no longer the profile's latest, and keeps the newer state", async () => {
      const connection = await opened();
      const store = new RedisSessionStore(connection, { keyPrefix: prefix, retentionMs: RETENTION_MS });
      const keys = redisKeys(prefix);
      const profileId = randomUUID();
      const stale = await connection.incr(keys.fence(profileId));
      const current = await connection.incr(keys.fence(profileId));
      const newer = record({ profileId, createdBy: "current-holder" });
      await runFenced({ profileId, token: current }, () => store.put(newer));
      await expect(runFenced({ profileId, token: stale }, () => store.put(record({ profileId, createdBy: "stale-holder" })))).rejects.toMatchObject({
        name: "LedgerError",
        kind: "fenced",
      });
      await expect(runFenced({ profileId, token: stale }, () => store.markRevoked(profileId, new Date(), "stale-holder"))).rejects.toBeInstanceOf(
        LedgerError,
      );
      expect(await store.get(profileId)).toEqual(newer);
      // A fence for another profile does not apply.
      const elsewhere = record();
      await runFenced({ profileId, token: stale }, () => store.put(elsewhere));
      expect(await store.get(elsewhere.profileId)).toEqual(elsewhere);
    });

    it("fails fast with a LedgerError while Redis cannot be reached, and ping rejects", async () => {
      const unreachable = createRedisConnection("redis://127.0.0.1:1");
      const store = new RedisSessionStore(unreachable, { keyPrefix: prefix, retentionMs: RETENTION_MS, ownsConnection: true });
      try {
        const started = Date.now();
        await expect(store.ping()).rejects.toMatchObject({ name: "LedgerError", kind: "unavailable" });
        await expect(store.get(randomUUID())).rejects.toMatchObject({ kind: "unavailable" });
        await expect(store.getMany([randomUUID()])).rejects.toMatchObject({ kind: "unavailable" });
        await expect(store.put(record())).rejects.toMatchObject({ kind: "unavailable" });
        await expect(store.markRevoked(randomUUID(), new Date(), "x")).rejects.toMatchObject({ kind: "unavailable" });
        expect(Date.now() - started).toBeLessThan(500);
      } finally {
        await store.close();
      }
    });
  });
});
