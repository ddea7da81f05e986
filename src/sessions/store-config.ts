import type { PostgresSettings } from "../postgres/connection.js";

export type { PostgresSettings } from "../postgres/connection.js";

/**
 * Where the session ledger lives. Parsed once from `SESSION_STORE_URL`. `memory:` is a SQLite
 * database in process memory (`:memory:`): the same rules, forgotten on restart. `postgres://…`
 * (or `postgresql://…`) holds everything a shared deployment needs, Redis or not.
 */
export type StoreConfig =
  | { readonly kind: "memory" }
  | { readonly kind: "sqlite"; readonly path: string }
  | { readonly kind: "redis"; readonly url: string }
  | { readonly kind: "postgres"; readonly url: string };

/** Settings for a Redis-backed deployment (`SESSION_STORE_URL=redis://…`). */
export interface RedisSettings {
  /** Prefix of every key (`REDIS_KEY_PREFIX`, default `wsg:`). Replicas of one deployment share it; one prefix = one organization. */
  readonly keyPrefix: string;
  /** How long a record stays readable after its session expires (`SESSION_RETENTION_DAYS`, default 7), in ms. */
  readonly retentionMs: number;
}

/** Settings for a PostgreSQL-backed deployment (`SESSION_STORE_URL=postgres://…`). */
export interface PostgresStoreSettings extends PostgresSettings {
  /** How long a record stays readable after its session expires (`SESSION_RETENTION_DAYS`, default 7), in ms. */
  readonly retentionMs: number;
}
