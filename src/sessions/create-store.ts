import type { PostgresStoreSettings, RedisSettings, StoreConfig } from "./store-config.js";
import { assertNever } from "../base/assert-never.js";
import { systemClock, type Clock } from "../base/clock.js";
import { closePostgresPool, createPostgresPool, type Pool } from "../postgres/connection.js";
import { migrate } from "../postgres/migrations.js";
import { createRedisConnection, type Redis } from "../redis/connection.js";
import { PostgresStorage } from "../storage/postgres-storage.js";
import { RedisStorage } from "../storage/redis-storage.js";
import type { FailureMapper, Storage } from "../storage/storage.js";
import { LedgerError } from "./errors.js";
import { Ledger } from "./ledger.js";
import { openSqliteStorage } from "./sqlite-store.js";
import type { SessionStore } from "./store.js";

export interface CreateStoreOptions {
  /** Redis key prefix and retention (`config.redis`). Defaults: `wsg:`, 7 days. */
  redis?: RedisSettings;
  /** A Redis connection to use (shared with the budget and the lock; not closed by the storage). */
  connection?: Redis;
  /** PostgreSQL schema, pool size, timeouts and retention (`config.postgres`). Defaults: `public`, 10, 5 s, 7 days. */
  postgres?: PostgresStoreSettings;
  /**
   * A PostgreSQL pool on a schema `migrate` brought up to date (shared with the budget; not closed by
   * the storage). Without one, `openStorage` opens and migrates its own; `createStorage` cannot.
   */
  pool?: Pool;
  /** Times expiries and leases. Default: the system clock. */
  clock?: Clock;
}

const DEFAULT_REDIS: RedisSettings = { keyPrefix: "wsg:", retentionMs: 7 * 24 * 3600 * 1000 };
const DEFAULT_POSTGRES: PostgresStoreSettings = { schema: "public", poolSize: 10, statementTimeoutMs: 5_000, retentionMs: 7 * 24 * 3600 * 1000 };

/** Every failure of the ledger's backing store, as callers know it: a LedgerError `unavailable`. */
export function ledgerFailure(backend: string): FailureMapper {
  return (operation, cause) => {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return new LedgerError("unavailable", `The session ledger (${backend}) failed on ${operation}: ${reason}`, { cause });
  };
}

/**
 * The storage `SESSION_STORE_URL` names: SQLite (a file, or `:memory:` for `memory:`), Redis, or
 * PostgreSQL on a migrated pool given in `options.pool` (`openStorage` opens and migrates one).
 */
export function createStorage(config: StoreConfig, options: CreateStoreOptions = {}): Storage {
  const clock = options.clock ?? systemClock;
  switch (config.kind) {
    case "memory":
      return openSqliteStorage(":memory:", { clock, fail: ledgerFailure("SQLite") });
    case "sqlite":
      return openSqliteStorage(config.path, { clock, fail: ledgerFailure("SQLite") });
    case "redis": {
      const settings = options.redis ?? DEFAULT_REDIS;
      const connection = options.connection ?? createRedisConnection(config.url);
      return new RedisStorage(connection, { keyPrefix: settings.keyPrefix, fail: ledgerFailure("Redis"), ownsConnection: options.connection === undefined });
    }
    case "postgres":
      if (options.pool === undefined) throw new TypeError("A PostgreSQL storage needs a migrated pool (options.pool): open it with openStorage");
      return new PostgresStorage(options.pool, { clock, fail: ledgerFailure("PostgreSQL") });
    default:
      return assertNever(config);
  }
}

/**
 * Opens the storage `SESSION_STORE_URL` names. For PostgreSQL without a given pool: opens one and
 * runs the migrations first (postgres/migrations.ts), so the storage it resolves to is ready, and
 * rejects (the pool closed) when they cannot run or the schema is newer than this release.
 */
export async function openStorage(config: StoreConfig, options: CreateStoreOptions = {}): Promise<Storage> {
  if (config.kind !== "postgres" || options.pool !== undefined) return createStorage(config, options);
  const settings = options.postgres ?? DEFAULT_POSTGRES;
  const pool = createPostgresPool(config.url, settings);
  try {
    await migrate(pool, settings.schema);
  } catch (error) {
    await closePostgresPool(pool);
    throw error;
  }
  return new PostgresStorage(pool, { clock: options.clock ?? systemClock, fail: ledgerFailure("PostgreSQL"), ownsPool: true });
}

/**
 * How long records (and finished jobs) stay after they end: `SESSION_RETENTION_DAYS` on Redis and
 * PostgreSQL; for ever on SQLite, which has always kept them until replaced.
 */
export function retentionOf(config: StoreConfig, options: CreateStoreOptions = {}): number | null {
  switch (config.kind) {
    case "redis":
      return (options.redis ?? DEFAULT_REDIS).retentionMs;
    case "postgres":
      return (options.postgres ?? DEFAULT_POSTGRES).retentionMs;
    case "memory":
    case "sqlite":
      return null;
    default:
      return assertNever(config);
  }
}

/** Opens the ledger that `SESSION_STORE_URL` names, on a storage of its own (closed with it). */
export async function createStore(config: StoreConfig, options: CreateStoreOptions = {}): Promise<SessionStore> {
  return new Ledger(await openStorage(config, options), { retentionMs: retentionOf(config, options), ...(options.clock === undefined ? {} : { clock: options.clock }) });
}

/** A ledger in process memory (SQLite `:memory:`): for tests and throwaway runs; gone on close. */
export function memoryLedger(clock: Clock = systemClock): Ledger {
  return new Ledger(createStorage({ kind: "memory" }, { clock }), { retentionMs: null, clock });
}
