/**
 * The ledger contract (test/support/store-contract.ts) on Redis, where two writers are two real
 * connections whose commands race at the server, and the guarantees only the Redis store makes: its
 * key layout, fencing, and failing fast while Redis is away.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { LedgerError } from "../../src/sessions/errors.js";
import type { TokenFence } from "../../src/sessions/fencing.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { Ledger } from "../../src/sessions/ledger.js";
import { redisKeys } from "../../src/redis/keys.js";
import { intentContract } from "../support/intent-contract.js";
import { describeRedis, freshRedisLedger, redisLedger, suiteRedis } from "../support/redis.js";
import { aSessionRecord as record, DAY, SEED, storeContract } from "../support/store-contract.js";

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
      store: redisLedger(connection, prefix, RETENTION_MS),
      otherWriter: async () => redisLedger(await opened(), prefix, RETENTION_MS),
      // Redis expires keys by its own clock, so records are written at the real time.
      now: () => Date.now(),
      commands: () => issued,
      remainingTtlMs: (profileId) => connection.pttl(keys.session(profileId)),
      withRetention: async (retentionMs) => redisLedger(await opened(), prefix, retentionMs),
      retentionMs: RETENTION_MS,
      close: async () => undefined,
    };
  });

  describe("Redis-only guarantees", () => {
    it("keeps one readable JSON string per profile under the prefix", async () => {
      const connection = await opened();
      const store = redisLedger(connection, prefix, RETENTION_MS);
      const written = record();
      await store.put(written, SEED);
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
      const store = redisLedger(connection, prefix, RETENTION_MS);
      const keys = redisKeys(prefix);
      const profileId = randomUUID();
      const fence = (token: number): TokenFence => ({ kind: "token", profileId, token });
      const stale = await connection.incr(keys.fence(profileId));
      const current = await connection.incr(keys.fence(profileId));
      const newer = record({ profileId, createdBy: "current-holder" });
      await store.put(newer, fence(current));
      await expect(store.put(record({ profileId, createdBy: "stale-holder" }), fence(stale))).rejects.toMatchObject({
        name: "LedgerError",
        kind: "fenced",
      });
      await expect(store.markRevoked(profileId, new Date(), "stale-holder", fence(stale))).rejects.toBeInstanceOf(LedgerError);
      await expect(store.beginMint({ profileId, createdBy: "stale-holder", startedAt: new Date() }, fence(stale))).rejects.toMatchObject({ kind: "fenced" });
      expect(await store.get(profileId)).toEqual(newer);
      expect(await store.getIntents([profileId])).toEqual([null]);
      // A fence belongs to one profile: handing it to another profile's write is a mistake, refused.
      const elsewhere = record();
      await expect(store.put(elsewhere, fence(current))).rejects.toBeInstanceOf(TypeError);
      expect(await store.get(elsewhere.profileId)).toBeNull();
    });

    it("fails fast with a LedgerError while Redis cannot be reached, and ping rejects", async () => {
      // The storage opens (and owns) its own connection to a port nobody listens on.
      const store = new Ledger(createStorage({ kind: "redis", url: "redis://127.0.0.1:1" }, { redis: { keyPrefix: prefix, retentionMs: RETENTION_MS } }), {
        retentionMs: RETENTION_MS,
      });
      try {
        // "Fast" is a property of the connection, not a duration: every command is refused at once
        // because nothing is queued while disconnected (ioredis names its offline queue as the reason),
        // never after waiting for a connection or a command timeout.
        const refusedAtOnce = { name: "LedgerError", kind: "unavailable", cause: expect.objectContaining({ message: expect.stringMatching(/enableOfflineQueue/) }) };
        await expect(store.ping()).rejects.toMatchObject(refusedAtOnce);
        await expect(store.get(randomUUID())).rejects.toMatchObject(refusedAtOnce);
        await expect(store.getMany([randomUUID()])).rejects.toMatchObject(refusedAtOnce);
        await expect(store.getStates([randomUUID()])).rejects.toMatchObject(refusedAtOnce);
        await expect(store.put(record(), SEED)).rejects.toMatchObject(refusedAtOnce);
        await expect(store.markRevoked(randomUUID(), new Date(), "x", SEED)).rejects.toMatchObject(refusedAtOnce);
      } finally {
        await store.close();
      }
    });
  });
});
