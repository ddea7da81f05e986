import type { RedisSettings, StoreConfig } from "./store-config.js";
import { assertNever } from "../base/assert-never.js";
import { createRedisConnection, type Redis } from "../redis/connection.js";
import { MemorySessionStore } from "./memory-store.js";
import { RedisSessionStore } from "./redis-store.js";
import { SqliteSessionStore } from "./sqlite-store.js";
import type { SessionStore } from "./store.js";

export interface CreateStoreOptions {
  /** Redis key prefix and retention (`config.redis`). Defaults: `wsg:`, 7 days. */
  redis?: RedisSettings;
  /** A Redis connection to use (shared with the budget and the lock; not closed by the store). */
  connection?: Redis;
}

const DEFAULT_REDIS: RedisSettings = { keyPrefix: "wsg:", retentionMs: 7 * 24 * 3600 * 1000 };

/** Opens the ledger that `SESSION_STORE_URL` names. */
export async function createStore(config: StoreConfig, options: CreateStoreOptions = {}): Promise<SessionStore> {
  switch (config.kind) {
    case "memory":
      return new MemorySessionStore();
    case "sqlite":
      return new SqliteSessionStore(config.path);
    case "redis": {
      const settings = options.redis ?? DEFAULT_REDIS;
      const connection = options.connection ?? createRedisConnection(config.url);
      return new RedisSessionStore(connection, { ...settings, ownsConnection: options.connection === undefined });
    }
    default:
      return assertNever(config);
  }
}
