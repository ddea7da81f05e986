/**
 * The ledger contract (test/support/store-contract.ts), the intents' and the kill switch's contracts
 * on PostgreSQL, where two writers are two pools whose statements race at the server; and the
 * guarantees only the PostgreSQL store makes: migrations (once across replicas, refusing a newer
 * schema), fencing on the storage's counter, and failing fast while PostgreSQL is away.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { closePostgresPool, createPostgresPool } from "../../src/postgres/connection.js";
import { MIGRATIONS, migrate, SchemaTooNewError } from "../../src/postgres/migrations.js";
import { keyNames } from "../../src/redis/keys.js";
import { createStore, openStorage } from "../../src/sessions/create-store.js";
import type { TokenFence } from "../../src/sessions/fencing.js";
import { LedgerJobStore } from "../../src/sessions/jobs/ledger-job-store.js";
import { PostgresStorage } from "../../src/storage/postgres-storage.js";
import { intentContract } from "../support/intent-contract.js";
import { creatorIndexContract, jobStoreContract } from "../support/job-store-contract.js";
import {
  countStatements,
  DATABASE_URL,
  describePostgres,
  dropSchema,
  freshPostgresLedger,
  postgresLedger,
  postgresSettings,
  suitePostgres,
  uniqueSchema,
} from "../support/postgres.js";
import { aSessionRecord as record, DAY, SEED, storeContract } from "../support/store-contract.js";

const RETENTION_MS = 7 * DAY;

describePostgres("the store contract on PostgreSQL", () => {
  const { schema, opened } = suitePostgres("store");

  intentContract("PostgreSQL", () => freshPostgresLedger(RETENTION_MS));
  creatorIndexContract("PostgreSQL", () => freshPostgresLedger(RETENTION_MS));

  storeContract("PostgreSQL", { roundTrips: true, retention: true, concurrentWriters: true }, async () => {
    const pool = await opened();
    const commands = countStatements(pool);
    return {
      store: postgresLedger(pool, RETENTION_MS),
      otherWriter: async () => postgresLedger(await opened(), RETENTION_MS),
      // Expiry is judged by the replicas' (here: the real) clock, so records are written at the real time.
      now: () => Date.now(),
      commands,
      batchRead: "wsg-storage-get",
      remainingTtlMs: async (profileId) => {
        const { rows } = await pool.query<{ expires_at: string | null }>("SELECT expires_at FROM storage_keys WHERE key = $1", [keyNames.session(profileId)]);
        const at = rows[0]?.expires_at;
        if (at === undefined) return -2;
        if (at === null) return -1;
        const left = Number(at) - Date.now();
        return left > 0 ? left : -2;
      },
      withRetention: async (retentionMs) => postgresLedger(await opened(), retentionMs),
      retentionMs: RETENTION_MS,
      close: async () => undefined,
    };
  });

  jobStoreContract("PostgreSQL", async () => {
    const own = uniqueSchema("rjob");
    const pools = [createPostgresPool(DATABASE_URL, postgresSettings(own)), createPostgresPool(DATABASE_URL, postgresSettings(own))];
    await migrate(pools[0]!, own);
    const jobsOn = (i: number) =>
      new LedgerJobStore(new PostgresStorage(pools[i]!), { retentionMs: RETENTION_MS });
    return {
      jobs: jobsOn(0),
      other: async () => jobsOn(1),
      passTime: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      close: async () => {
        for (const pool of pools) await closePostgresPool(pool);
        await dropSchema(own);
      },
    };
  });

  describe("PostgreSQL-only guarantees", () => {
    it("keeps one readable JSON string per profile in storage_keys, expiring a retention after the session", async () => {
      const pool = await opened();
      const store = postgresLedger(pool, RETENTION_MS);
      const written = record();
      await store.put(written, SEED);
      const { rows } = await pool.query<{ value: string; expires_at: string }>(`SELECT value, expires_at FROM ${schema}.storage_keys WHERE key = $1`, [
        `session:${written.profileId}`,
      ]);
      expect(JSON.parse(rows[0]!.value)).toMatchObject({ profileId: written.profileId, createdBy: "caller-1", revokedAt: null });
      expect(Number(rows[0]!.expires_at)).toBe(written.expiresAt.getTime() + RETENTION_MS);
    });

    it("refuses a write whose fencing token is no longer the profile's latest, and keeps the newer state", async () => {
      const pool = await opened();
      const store = postgresLedger(pool, RETENTION_MS);
      const storage = new PostgresStorage(pool);
      const profileId = randomUUID();
      const fence = (token: number): TokenFence => ({ kind: "token", profileId, token });
      await storage.commit([], [{ op: "put", key: keyNames.fence(profileId), value: "2" }]);
      const newer = record({ profileId, createdBy: "current-holder" });
      await store.put(newer, fence(2));
      await expect(store.put(record({ profileId, createdBy: "stale-holder" }), fence(1))).rejects.toMatchObject({ name: "LedgerError", kind: "fenced" });
      await expect(store.beginMint({ profileId, createdBy: "stale-holder", startedAt: new Date() }, fence(1))).rejects.toMatchObject({ kind: "fenced" });
      expect(await store.get(profileId)).toEqual(newer);
    });

    it("migrates once when two replicas start at once, and again finds nothing to do", async () => {
      const own = uniqueSchema("migrate");
      const pools = [createPostgresPool(DATABASE_URL, postgresSettings(own)), createPostgresPool(DATABASE_URL, postgresSettings(own))];
      try {
        const results = await Promise.all(pools.map((pool) => migrate(pool, own)));
        const latest = Math.max(...MIGRATIONS.map((m) => m.version));
        // One of them applied every version, the other found them applied.
        expect(results.map((r) => r.from).sort()).toEqual([0, latest]);
        expect(results.every((r) => r.to === latest)).toBe(true);
        const { rows } = await pools[0]!.query<{ version: number }>(`SELECT version FROM ${own}.schema_migrations ORDER BY version`);
        expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
        expect(await migrate(pools[1]!, own)).toEqual({ from: latest, to: latest });
      } finally {
        for (const pool of pools) await closePostgresPool(pool);
        await dropSchema(own);
      }
    });

    it("refuses to open a schema that a newer release migrated, naming both versions", async () => {
      const own = uniqueSchema("newer");
      const pool = createPostgresPool(DATABASE_URL, postgresSettings(own));
      try {
        await migrate(pool, own);
        const latest = Math.max(...MIGRATIONS.map((m) => m.version));
        await pool.query(`INSERT INTO ${own}.schema_migrations (version, name) VALUES ($1, 'from a newer release')`, [latest + 1]);
        const refused = await migrate(pool, own).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(SchemaTooNewError);
        expect((refused as Error).message).toContain(`is at version ${latest + 1}, but this release knows versions up to ${latest}`);
        await expect(
          createStore({ kind: "postgres", url: DATABASE_URL }, { postgres: postgresSettings(own) }),
        ).rejects.toBeInstanceOf(SchemaTooNewError);
      } finally {
        await closePostgresPool(pool);
        await dropSchema(own);
      }
    });

    it("fails fast with a LedgerError while PostgreSQL cannot be reached, and ping rejects", async () => {
      const pool = createPostgresPool("postgres://postgres@127.0.0.1:1/test", postgresSettings(uniqueSchema("down")));
      const store = postgresLedger(pool, RETENTION_MS);
      try {
        const started = Date.now();
        await expect(store.ping()).rejects.toMatchObject({ name: "LedgerError", kind: "unavailable" });
        await expect(store.get(randomUUID())).rejects.toMatchObject({ kind: "unavailable" });
        await expect(store.getStates([randomUUID()])).rejects.toMatchObject({ kind: "unavailable" });
        await expect(store.put(record(), SEED)).rejects.toMatchObject({ kind: "unavailable" });
        expect(Date.now() - started).toBeLessThan(1000);
        // Opening a store there fails at once too: the migrations cannot run.
        await expect(openStorage({ kind: "postgres", url: "postgres://postgres@127.0.0.1:1/test" }, { postgres: postgresSettings(uniqueSchema("down")) })).rejects.toThrow();
      } finally {
        await closePostgresPool(pool);
      }
    });

    it("sweeps expired keys out of the tables, and only those", async () => {
      const pool = await opened();
      const storage = new PostgresStorage(pool);
      const gone = `sweep:${randomUUID()}`;
      const kept = `sweep:${randomUUID()}`;
      await storage.commit(
        [],
        [
          { op: "setField", key: gone, field: "a", value: "1" },
          { op: "expireAt", key: gone, at: Date.now() + 50 },
          { op: "put", key: kept, value: "x", expireAt: Date.now() + DAY },
        ],
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await storage.purgeExpired()).toBeGreaterThanOrEqual(1);
      const { rows } = await pool.query<{ key: string }>(`SELECT key FROM ${schema}.storage_keys WHERE key = ANY($1)`, [[gone, kept]]);
      expect(rows.map((r) => r.key)).toEqual([kept]);
      const items = await pool.query(`SELECT 1 FROM ${schema}.storage_items WHERE key = $1`, [gone]);
      expect(items.rowCount).toBe(0);
    });
  });
});
