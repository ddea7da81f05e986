import type { RedisSettings, StoreConfig } from "../store-config.js";
import { assertNever } from "../../base/assert-never.js";
import type { Redis } from "../../redis/connection.js";
import type { JobStore } from "./job-store.js";
import { MemoryJobStore } from "./memory-job-store.js";
import { RedisJobStore } from "./redis-job-store.js";
import { SqliteJobStore } from "./sqlite-job-store.js";

/** Opens the revocation jobs' store in the backend `SESSION_STORE_URL` names, beside the ledger. */
export function createJobStore(config: StoreConfig, options: { redis?: RedisSettings; connection?: Redis } = {}): JobStore {
  switch (config.kind) {
    case "memory":
      return new MemoryJobStore();
    case "sqlite":
      return new SqliteJobStore(config.path);
    case "redis": {
      if (options.connection === undefined || options.redis === undefined) throw new TypeError("the Redis job store needs the infrastructure's connection");
      return new RedisJobStore(options.connection, { keyPrefix: options.redis.keyPrefix, retentionMs: options.redis.retentionMs });
    }
    default:
      return assertNever(config);
  }
}
