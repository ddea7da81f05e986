/**
 * The backends several gateway processes can share, for the multi-replica tests to run on each:
 * Redis (a key prefix per test) and PostgreSQL alone, no Redis (a schema per test). Each test gets
 * a fresh namespace: the environment that points a gateway at it, a ledger on it for the test to
 * read, and a cleanup that removes only what the test created.
 */
import type { Redis } from "ioredis";
import { closePostgresPool, createPostgresPool, type Pool } from "../../src/postgres/connection.js";
import { migrate } from "../../src/postgres/migrations.js";
import type { SessionStore } from "../../src/sessions/store.js";
import { DATABASE_URL, describePostgres, dropSchema, postgresLedger, postgresSettings, uniqueSchema } from "./postgres.js";
import { connect, deletePrefix, describeRedis, REDIS_URL, redisLedger, uniquePrefix } from "./redis.js";

const RETENTION_MS = 7 * 24 * 3600 * 1000;

export interface SharedNamespace {
  /** What a gateway's environment needs to use this namespace (`SESSION_STORE_URL` and its prefix or schema). */
  readonly env: Record<string, string>;
  /** A ledger on the namespace, for the test to read what the gateways recorded. */
  ledger(): Promise<SessionStore>;
  cleanup(): Promise<void>;
}

export interface SharedBackend {
  readonly name: string;
  /** `describe`, skipped (with a line saying why) when the backend is not there. */
  describe(name: string, body: () => void): void;
  namespace(label: string): SharedNamespace;
}

export const redisBackend: SharedBackend = {
  name: "Redis",
  describe: describeRedis,
  namespace(label) {
    const prefix = uniquePrefix(label);
    let connection: Redis | undefined;
    return {
      env: { SESSION_STORE_URL: REDIS_URL, REDIS_KEY_PREFIX: prefix },
      async ledger() {
        connection ??= await connect();
        return redisLedger(connection, prefix, RETENTION_MS);
      },
      async cleanup() {
        connection?.disconnect();
        await deletePrefix(prefix);
      },
    };
  },
};

export const postgresBackend: SharedBackend = {
  name: "PostgreSQL",
  describe: describePostgres,
  namespace(label) {
    const schema = uniqueSchema(label);
    let pool: Pool | undefined;
    return {
      // PostgreSQL alone: no REDIS_* setting at all.
      env: { SESSION_STORE_URL: DATABASE_URL, POSTGRES_SCHEMA: schema },
      async ledger() {
        if (pool === undefined) {
          pool = createPostgresPool(DATABASE_URL, postgresSettings(schema), { name: "wsg-test" });
          await migrate(pool, schema);
        }
        return postgresLedger(pool, RETENTION_MS);
      },
      async cleanup() {
        if (pool !== undefined) await closePostgresPool(pool);
        await dropSchema(schema);
      },
    };
  },
};

/** Every backend that several replicas can share. */
export const SHARED_BACKENDS: readonly SharedBackend[] = [redisBackend, postgresBackend];
