import type { RedisSettings, StoreConfig } from "./store-config.js";
import { assertNever } from "../base/assert-never.js";
import { systemClock, type Clock } from "../base/clock.js";
import { createRedisConnection, type Redis } from "../redis/connection.js";
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
  /** Times expiries and leases. Default: the system clock. */
  clock?: Clock;
}

const DEFAULT_REDIS: RedisSettings = { keyPrefix: "wsg:", retentionMs: 7 * 24 * 3600 * 1000 };

/** Every failure of the ledger's backing store, as callers know it: a LedgerError `unavailable`. */
function ledgerFailure(backend: string): FailureMapper {
  return (operation, cause) => {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return new LedgerError("unavailable", `The session ledger (${backend}) failed on ${operation}: ${reason}`, { cause });
  };
}

/** The storage `SESSION_STORE_URL` names: SQLite (a file, or `:memory:` for `memory:`) or Redis. */
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
    default:
      return assertNever(config);
  }
}

/**
 * How long records (and finished jobs) stay after they end: `SESSION_RETENTION_DAYS` on Redis; for
 * ever on SQLite, which has always kept them until replaced.
 */
export function retentionOf(config: StoreConfig, options: CreateStoreOptions = {}): number | null {
  return config.kind === "redis" ? (options.redis ?? DEFAULT_REDIS).retentionMs : null;
}

/** Opens the ledger that `SESSION_STORE_URL` names, on a storage of its own (closed with it). */
export async function createStore(config: StoreConfig, options: CreateStoreOptions = {}): Promise<SessionStore> {
  return new Ledger(createStorage(config, options), { retentionMs: retentionOf(config, options), ...(options.clock === undefined ? {} : { clock: options.clock }) });
}

/** A ledger in process memory (SQLite `:memory:`): for tests and throwaway runs; gone on close. */
export function memoryLedger(clock: Clock = systemClock): Ledger {
  return new Ledger(createStorage({ kind: "memory" }, { clock }), { retentionMs: null, clock });
}
