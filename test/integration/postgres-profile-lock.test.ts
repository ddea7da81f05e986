/**
 * Per-profile ordering across replicas on PostgreSQL: the shared contract (test/support/profile-
 * lock-contract.ts), each replica with its own pools (the lock's and the storage's), and a dead
 * holder's lock freed the moment its connection ends.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { closePostgresPool, createPostgresPool, type Pool } from "../../src/postgres/connection.js";
import { PostgresProfileLock, type PostgresProfileLockOptions } from "../../src/sessions/postgres-profile-lock.js";
import { PostgresStorage } from "../../src/storage/postgres-storage.js";
import { profileLockContract } from "../support/profile-lock-contract.js";
import { DATABASE_URL, describePostgres, postgresLedger, postgresSettings, suitePostgres } from "../support/postgres.js";

describePostgres("per-profile ordering across replicas (PostgreSQL advisory lock + fencing)", () => {
  const { schema, opened } = suitePostgres("order");
  const lockPools: Pool[] = [];
  afterAll(async () => {
    for (const pool of lockPools) await closePostgresPool(pool);
  });
  const replica = async (options: Partial<PostgresProfileLockOptions> = {}) => {
    const pool = await opened();
    const lockPool = createPostgresPool(DATABASE_URL, postgresSettings(schema), { name: "wsg-test-lock" });
    lockPools.push(lockPool);
    return { lock: new PostgresProfileLock(lockPool, new PostgresStorage(pool), { schema, ...options }), store: postgresLedger(pool, 60_000) };
  };

  profileLockContract({
    replica: ({ acquireTimeoutMs, maxHoldMs } = {}) =>
      replica({ ...(acquireTimeoutMs === undefined ? {} : { acquireTimeoutMs }), ...(maxHoldMs === undefined ? {} : { maxHoldMs }) }),
    unreachable: () => {
      const down = "postgres://postgres@127.0.0.1:1/test";
      const lockPool = createPostgresPool(down, postgresSettings(schema));
      const pool = createPostgresPool(down, postgresSettings(schema));
      return {
        lock: new PostgresProfileLock(lockPool, new PostgresStorage(pool), { schema }),
        close: async () => {
          await closePostgresPool(lockPool);
          await closePostgresPool(pool);
        },
      };
    },
  });

  it("frees a dead replica's lock as soon as its connection ends, and the waiting turn starts then", async () => {
    const b = await replica();
    const profileId = randomUUID();
    // Another replica holds the profile's lock on its connection.
    const dead = new pg.Client({ connectionString: DATABASE_URL });
    dead.on("error", () => undefined);
    await dead.connect();
    await dead.query("SELECT pg_advisory_lock(hashtext($1), hashtext($2))", [schema, profileId]);
    let started = false;
    const waiting = b.lock.run(profileId, async (fence) => {
      started = true;
      return fence;
    });
    // Held by that connection: the turn does not start.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(started).toBe(false);
    // The replica dies: its connection ends, and PostgreSQL frees its lock.
    const pid = (dead as unknown as { processID: number }).processID;
    await (await opened()).query("SELECT pg_terminate_backend($1)", [pid]);
    expect(await waiting).toMatchObject({ kind: "token", profileId });
    expect(started).toBe(true);
    await dead.end().catch(() => undefined);
  });
});
