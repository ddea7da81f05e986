/**
 * One contract for every ledger: the same suite runs against the memory, SQLite and Redis stores.
 * Each backend brings a factory; the few things only some stores can show (a round trip counted, a
 * retention TTL) are capabilities the factory may offer.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Redis } from "ioredis";
import { MemorySessionStore } from "../../src/sessions/memory-store.js";
import { statusOf, type SessionRecord } from "../../src/sessions/record.js";
import { RedisSessionStore } from "../../src/sessions/redis-store.js";
import { SqliteSessionStore } from "../../src/sessions/sqlite-store.js";
import type { SessionStore } from "../../src/sessions/store.js";
import { LedgerError } from "../../src/sessions/errors.js";
import { runFenced } from "../../src/sessions/fencing.js";
import { createRedisConnection, redisKeys } from "../../src/redis/connection.js";
import { connect, deletePrefix, describeRedis, uniquePrefix } from "../support/redis.js";

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

interface Backend {
  /** The store under test. */
  store: SessionStore;
  /** A second, independent writer on the same ledger (another connection or instance). */
  otherWriter(): Promise<SessionStore>;
  /** Backing-store commands issued so far, when the backend can count them. */
  commands?: () => string[];
  /** Retention: the key's remaining lifetime in ms (-2 when gone), when the backend expires records. */
  remainingTtlMs?: (profileId: string) => Promise<number>;
  /** A store with a custom retention on the same ledger, when the backend has retention. */
  withRetention?: (retentionMs: number) => Promise<SessionStore>;
  retentionMs?: number;
  close(): Promise<void>;
}

function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    profileId: randomUUID(),
    createdAt: new Date(now),
    expiresAt: new Date(now + DAY),
    revokedAt: null,
    createdBy: "caller-1",
    revokedBy: null,
    ...overrides,
  };
}

/** What only some stores can show; the matching checks are defined for those stores alone. */
interface Capabilities {
  /** It talks to a server, so a batch read's round trips can be counted. */
  roundTrips: boolean;
  /** It expires records after their retention period. */
  retention: boolean;
}

/** Defines the test only where it applies: not a skip, since there is nothing there to check. */
function onlyIf(applies: boolean): (name: string, body: () => Promise<void>) => void {
  return applies ? (name, body) => it(name, body) : () => undefined;
}

function storeContract(name: string, capabilities: Capabilities, open: () => Promise<Backend>): void {
  describe(`the ${name} ledger`, () => {
    let backend: Backend;
    let store: SessionStore;

    beforeAll(async () => {
      backend = await open();
      store = backend.store;
    });
    afterAll(async () => {
      await backend.close();
    });

    describe("get", () => {
      it("answers null for a profile it never saw", async () => {
        expect(await store.get(randomUUID())).toBeNull();
      });

      it("returns what was put, field for field, to the millisecond", async () => {
        const written = record({ createdAt: new Date("2026-01-02T03:04:05.678Z"), expiresAt: new Date("2126-01-03T03:04:05.679Z") });
        await store.put(written);
        expect(await store.get(written.profileId)).toEqual(written);
      });

      it("hands out copies: changing a returned record changes nothing stored", async () => {
        const written = record();
        await store.put(written);
        const read = (await store.get(written.profileId))!;
        const expiresAt = written.expiresAt.getTime();
        read.createdBy = "someone-else";
        read.expiresAt.setTime(0);
        written.createdBy = "mutated-after-put";
        const again = (await store.get(written.profileId))!;
        expect(again.createdBy).toBe("caller-1");
        expect(again.expiresAt.getTime()).toBe(expiresAt);
      });
    });

    describe("getMany (entity resolution)", () => {
      it("answers one entry per id, in the order asked, null where unknown, duplicates included", async () => {
        const a = record();
        const b = record({ createdBy: "caller-b" });
        await store.put(a);
        await store.put(b);
        const unknown = randomUUID();
        const result = await store.getMany([b.profileId, unknown, a.profileId, b.profileId]);
        expect(result).toEqual([b, null, a, b]);
      });

      it("answers [] for no ids", async () => {
        expect(await store.getMany([])).toEqual([]);
      });

      onlyIf(capabilities.roundTrips)("reads the whole batch in one round trip", async () => {
        if (backend.commands === undefined) throw new Error(`the ${name} backend must count its commands`);
        const ids = [record(), record(), record()].map((r) => r.profileId);
        const before = backend.commands().length;
        await store.getMany([...ids, randomUUID(), ...ids]);
        const issued = backend.commands().slice(before);
        expect(issued).toEqual(["mget"]);
      });
    });

    describe("put (create, replace)", () => {
      it("replaces the earlier record for the profile: one record per profile, as Deel keeps one token", async () => {
        const first = record();
        await store.put(first);
        await store.markRevoked(first.profileId, new Date(), "revoker");
        const second = record({ profileId: first.profileId, createdBy: "caller-2", expiresAt: new Date(Date.now() + 2 * DAY) });
        await store.put(second);
        const read = await store.get(first.profileId);
        expect(read).toEqual(second);
        expect(statusOf(read!, new Date())).toBe("ACTIVE");
      });
    });

    describe("markRevoked", () => {
      it("answers null and writes nothing for a profile it never saw", async () => {
        const id = randomUUID();
        expect(await store.markRevoked(id, new Date(), "revoker")).toBeNull();
        expect(await store.get(id)).toBeNull();
      });

      it("marks the record REVOKED and returns it as it now stands", async () => {
        const written = record();
        await store.put(written);
        const at = new Date(Date.now() + 5);
        const revoked = await store.markRevoked(written.profileId, at, "revoker-1");
        expect(revoked).toEqual({ ...written, revokedAt: at, revokedBy: "revoker-1" });
        expect(await store.get(written.profileId)).toEqual(revoked);
        expect(statusOf(revoked!, new Date())).toBe("REVOKED");
      });

      it("is idempotent: a second revoke keeps the first revokedAt and revokedBy", async () => {
        const written = record();
        await store.put(written);
        const first = await store.markRevoked(written.profileId, new Date(1_800_000_000_000), "first");
        const second = await store.markRevoked(written.profileId, new Date(1_800_000_999_000), "second");
        expect(second).toEqual(first);
        expect(second).toMatchObject({ revokedAt: new Date(1_800_000_000_000), revokedBy: "first" });
      });
    });

    describe("expiry and retention", () => {
      it("keeps an expired session readable, and its status is derived: EXPIRED, or REVOKED once revoked", async () => {
        const expired = record({ createdAt: new Date(Date.now() - DAY - HOUR), expiresAt: new Date(Date.now() - HOUR) });
        await store.put(expired);
        const read = await store.get(expired.profileId);
        expect(read).toEqual(expired);
        expect(statusOf(read!, new Date())).toBe("EXPIRED");
        const revoked = await store.markRevoked(expired.profileId, new Date(), "revoker");
        expect(statusOf(revoked!, new Date())).toBe("REVOKED");
      });

      onlyIf(capabilities.retention)("keeps a record for its session's lifetime plus the retention period, revoked or not", async () => {
        if (backend.remainingTtlMs === undefined || backend.retentionMs === undefined) {
          throw new Error(`the ${name} backend must report TTLs and its retention`);
        }
        const written = record({ expiresAt: new Date(Date.now() + 2 * HOUR) });
        await store.put(written);
        const expected = written.expiresAt.getTime() + backend.retentionMs - Date.now();
        const ttl = await backend.remainingTtlMs(written.profileId);
        expect(Math.abs(ttl - expected)).toBeLessThan(2000);
        // Revoking does not shorten or extend the audit trail.
        await store.markRevoked(written.profileId, new Date(), "revoker");
        expect(Math.abs((await backend.remainingTtlMs(written.profileId)) - expected)).toBeLessThan(2000);
      });

      onlyIf(capabilities.retention)("forgets a record once its retention has passed", async () => {
        if (backend.withRetention === undefined || backend.remainingTtlMs === undefined) {
          throw new Error(`the ${name} backend must offer a custom retention`);
        }
        const shortLived = await backend.withRetention(300);
        const written = record({ expiresAt: new Date(Date.now() - 100) });
        await shortLived.put(written);
        expect(await store.get(written.profileId)).toEqual(written);
        await new Promise((resolve) => setTimeout(resolve, 400));
        expect(await store.get(written.profileId)).toBeNull();
        expect(await backend.remainingTtlMs(written.profileId)).toBe(-2);
      });
    });

    describe("concurrent writers", () => {
      it("loses no write when two writers put many records at once", async () => {
        const other = await backend.otherWriter();
        const records = Array.from({ length: 60 }, (_, i) => record({ createdBy: `writer-${i % 2}` }));
        await Promise.all(records.map((r, i) => (i % 2 === 0 ? store : other).put(r)));
        expect(await store.getMany(records.map((r) => r.profileId))).toEqual(records);
        expect(await other.getMany(records.map((r) => r.profileId))).toEqual(records);
      });

      it("lets exactly one of many concurrent revokes win, and every caller sees the winner", async () => {
        const other = await backend.otherWriter();
        const written = record();
        await store.put(written);
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : other).markRevoked(written.profileId, new Date(Date.now() + i), `revoker-${i}`)),
        );
        const winners = new Set(results.map((r) => `${r?.revokedBy}@${r?.revokedAt?.toISOString()}`));
        expect(winners.size).toBe(1);
        expect(await store.get(written.profileId)).toEqual(results[0]);
      });

      it("never shows a torn record while another writer replaces it", async () => {
        const other = await backend.otherWriter();
        const profileId = randomUUID();
        const versions = Array.from({ length: 20 }, (_, i) =>
          record({ profileId, createdBy: `v${i}`, expiresAt: new Date(Date.UTC(2100, 0, 1) + i * 1000) }),
        );
        const reads: Array<SessionRecord | null> = [];
        await Promise.all([
          (async () => {
            for (const version of versions) await other.put(version);
          })(),
          (async () => {
            for (let i = 0; i < 20; i += 1) reads.push(await store.get(profileId));
          })(),
        ]);
        for (const read of reads) {
          if (read === null) continue;
          const index = Number(read.createdBy.slice(1));
          expect(read).toEqual(versions[index]);
        }
        expect(await store.get(profileId)).toEqual(versions[19]);
      });
    });

    it("answers ping while it can serve", async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}

// --- memory -------------------------------------------------------------------------------------

storeContract("memory", { roundTrips: false, retention: false }, async () => {
  const store = new MemorySessionStore();
  return { store, otherWriter: async () => store, close: () => store.close() };
});

// --- SQLite: a temp file, and a second connection on it as the other writer ---------------------

storeContract("SQLite", { roundTrips: false, retention: false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "wsg-store-"));
  const path = join(dir, "ledger.db");
  const store = new SqliteSessionStore(path);
  const others: SqliteSessionStore[] = [];
  return {
    store,
    async otherWriter() {
      const other = new SqliteSessionStore(path);
      others.push(other);
      return other;
    },
    async close() {
      for (const other of others) await other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// --- Redis: its own connection per writer, a unique key prefix, every command counted -----------

const RETENTION_MS = 7 * DAY;

describeRedis("the store contract on Redis", () => {
  const prefix = uniquePrefix("store");
  const connections: Redis[] = [];
  const opened = async (): Promise<Redis> => {
    const connection = await connect();
    connections.push(connection);
    return connection;
  };
  afterAll(async () => {
    for (const connection of connections) connection.disconnect();
    await deletePrefix(prefix);
  });

  storeContract("Redis", { roundTrips: true, retention: true }, async () => {
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
