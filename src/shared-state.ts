import type { Logger } from "pino";
import { createLogger } from "./http/logger.js";
import type { Config } from "./config.js";
import type { OutboundBudget } from "./deel/budget.js";
import { LocalBudget } from "./deel/local-budget.js";
import { PostgresBudget } from "./deel/postgres-budget.js";
import { RedisBudget } from "./deel/redis-budget.js";
import { closePostgresPool, createPostgresPool, describePostgresUrl } from "./postgres/connection.js";
import { migrate } from "./postgres/migrations.js";
import { closeRedisConnection, createRedisConnection, describeRedisUrl, waitUntilReady } from "./redis/connection.js";
import { createJobStore } from "./sessions/jobs/create-job-store.js";
import type { JobStore } from "./sessions/jobs/job-store.js";
import { PostgresProfileLock } from "./sessions/postgres-profile-lock.js";
import { RedisProfileLock } from "./sessions/redis-profile-lock.js";
import { createStorage, ledgerFailure, retentionOf } from "./sessions/create-store.js";
import { intentStaleAfterMs } from "./sessions/intent.js";
import { Ledger } from "./sessions/ledger.js";
import { PostgresStorage } from "./storage/postgres-storage.js";
import type { Storage } from "./storage/storage.js";
import { ProfileQueue } from "./sessions/profile-queue.js";
import type { ProfileLock } from "./sessions/profile-lock.js";
import type { SessionStore } from "./sessions/store.js";

/**
 * The stateful parts one gateway process shares with its siblings (or keeps to itself): the
 * ledger, the organization's outbound Deel budget, and per-profile ordering.
 */
export interface SharedState {
  store: SessionStore;
  /** Null when pacing is off (`DEEL_RATE_LIMIT_RPS=0`). */
  budget: OutboundBudget | null;
  lock: ProfileLock;
  /** Revocation jobs (the kill switch), in the ledger's backend. */
  jobs: JobStore;
  close(): Promise<void>;
}

export interface SharedStateOptions {
  /** A ledger to use instead of the one `SESSION_STORE_URL` names (tests). */
  store?: SessionStore;
  /** Where Redis and PostgreSQL connection trouble is reported (one line per outage, one on recovery). */
  logger?: Logger;
}

/** Builds the parts that `config` names; a test may hand in its own store. */
export async function createSharedState(config: Config, given: SharedStateOptions = {}): Promise<SharedState> {
  if (config.store.kind === "redis") return createRedisSharedState(config, config.store.url, given);
  if (config.store.kind === "postgres") return createPostgresSharedState(config, config.store.url, given);
  const storage = createStorage(config.store);
  const store = given.store ?? ledgerOn(storage, config);
  const budget: OutboundBudget | null =
    config.deel.rateLimitRps > 0 ? new LocalBudget({ rps: config.deel.rateLimitRps, marginMs: config.deel.rateLimitMarginMs }) : null;
  return withJobs(assemble(store, budget, new ProfileQueue()), storage, config);
}

/** The ledger on the shared storage (the storage is closed last, by the shared state). */
function ledgerOn(storage: Storage, config: Config): SessionStore {
  return new Ledger(storage, {
    retentionMs: retentionOf(config.store, { redis: config.redis, postgres: config.postgres }),
    ownsStorage: false,
    historyRetentionMs: config.sessionHistory.retentionMs,
    // The history dates a lost mint's INTENT_UNKNOWN when reads start answering UNKNOWN for it.
    unknownAfterMs: intentStaleAfterMs(config.deel.timeoutMs),
  });
}

/** Adds the revocation jobs' store, on the ledger's storage; closed before the rest, the storage after. */
function withJobs(parts: Omit<SharedState, "jobs">, storage: Storage, config: Config, after?: () => Promise<void>): SharedState {
  const jobs = createJobStore(storage, { retentionMs: retentionOf(config.store, { redis: config.redis, postgres: config.postgres }) });
  return {
    ...parts,
    jobs,
    async close() {
      // Each step runs even when an earlier one failed: a connection or pool left open would keep
      // the process alive at shutdown. The first failure is thrown once all have run.
      const outcomes = [];
      for (const step of [() => jobs.close(), () => parts.close(), () => storage.close(), async () => after?.()]) {
        outcomes.push(await step().then(
          () => undefined,
          (error: unknown) => ({ error }),
        ));
      }
      const failed = outcomes.find((outcome) => outcome !== undefined);
      if (failed !== undefined) throw failed.error;
    },
  };
}

/** The parts, closed in the reverse order of their use: ordering, then the budget, then the ledger. */
function assemble(store: SessionStore, budget: OutboundBudget | null, lock: ProfileLock): Omit<SharedState, "jobs"> {
  return {
    store,
    budget,
    lock,
    async close() {
      await lock.close();
      await budget?.close();
      await store.close();
    },
  };
}

/** How long start-up waits for Redis before starting unready (`/readyz` 503 until Redis answers). */
const REDIS_STARTUP_WAIT_MS = 3_000;

/**
 * With `SESSION_STORE_URL=redis://…`, every replica shares one Redis: the ledger, the organization's
 * Deel budget (when `DEEL_RATE_LIMIT_RPS` > 0) and per-profile ordering, over one fail-fast,
 * self-healing connection per process (src/redis/connection.ts).
 */
async function createRedisSharedState(config: Config, url: string, given: SharedStateOptions): Promise<SharedState> {
  const where = describeRedisUrl(url);
  const log = (given.logger ?? createLogger(config.logLevel)).child({ component: "redis" });
  const connection = createRedisConnection(url, {
    onError: (error) => log.error({ err: error, redis: where }, "Redis is unreachable: the ledger, the Deel budget and ordering fail fast until it returns"),
    onRecovered: () => log.info({ redis: where }, "Redis is reachable again"),
  });
  if (!(await waitUntilReady(connection, REDIS_STARTUP_WAIT_MS))) {
    log.warn({ redis: where }, `Redis did not answer within ${REDIS_STARTUP_WAIT_MS} ms; starting unready and reconnecting in the background`);
  }
  const storage = createStorage(config.store, { redis: config.redis, connection });
  const store = given.store ?? ledgerOn(storage, config);
  const budget: OutboundBudget | null =
    config.deel.rateLimitRps > 0
      ? new RedisBudget(connection, { keyPrefix: config.redis.keyPrefix, rps: config.deel.rateLimitRps, marginMs: config.deel.rateLimitMarginMs })
      : null;
  const lock = new RedisProfileLock(connection, {
    keyPrefix: config.redis.keyPrefix,
    // The Deel deadline already counts from before the wait for the lock; waiting longer is useless.
    acquireTimeoutMs: config.deel.timeoutMs,
    maxHoldMs: Math.max(60_000, 4 * config.deel.timeoutMs),
  });
  return withJobs(assemble(store, budget, lock), storage, config, () => closeRedisConnection(connection));
}

/** How often a replica sweeps expired keys out of PostgreSQL's tables (they already read as absent). */
const POSTGRES_PURGE_EVERY_MS = 3600 * 1000;

/**
 * With `SESSION_STORE_URL=postgres://…`, every replica shares one PostgreSQL schema and nothing
 * else (no Redis, even when one is configured): the ledger, the revocation jobs and their leases,
 * the organization's Deel budget (when `DEEL_RATE_LIMIT_RPS` > 0) and per-profile ordering. The
 * schema is migrated first, once across replicas (postgres/migrations.ts); start-up fails, with the
 * reason, when that cannot happen. Two pools per process: the storage's and the budget's, and the
 * profile lock's, whose holders keep a connection for the length of their task.
 */
async function createPostgresSharedState(config: Config, url: string, given: SharedStateOptions): Promise<SharedState> {
  const where = describePostgresUrl(url);
  const log = (given.logger ?? createLogger(config.logLevel)).child({ component: "postgres" });
  const onError = (error: Error) => log.error({ err: error, postgres: where }, "A PostgreSQL connection failed; the next operations reconnect");
  const settings = config.postgres;
  const pool = createPostgresPool(url, settings, { onError });
  const acquireTimeoutMs = config.deel.timeoutMs;
  const lockPool = createPostgresPool(url, { ...settings, statementTimeoutMs: acquireTimeoutMs + 1000 }, {
    onError,
    name: "worker-session-gateway-lock",
    // Waiting for a free connection (every one held by another profile's turn) is part of the wait for the lock.
    connectTimeoutMs: acquireTimeoutMs,
  });
  try {
    const { from, to } = await migrate(pool, settings.schema);
    if (from !== to) log.info({ postgres: where, schema: settings.schema, from, to }, "migrated the PostgreSQL schema");
  } catch (error) {
    await Promise.all([closePostgresPool(pool), closePostgresPool(lockPool)]);
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`PostgreSQL at ${where} (schema "${settings.schema}") could not be made ready: ${reason}`, { cause: error });
  }
  const storage = new PostgresStorage(pool, { fail: ledgerFailure("PostgreSQL") });
  const store = given.store ?? ledgerOn(storage, config);
  const budget: OutboundBudget | null =
    config.deel.rateLimitRps > 0 ? new PostgresBudget(pool, { rps: config.deel.rateLimitRps, marginMs: config.deel.rateLimitMarginMs }) : null;
  const lock = new PostgresProfileLock(lockPool, storage, {
    schema: settings.schema,
    // The Deel deadline already counts from before the wait for the lock; waiting longer is useless.
    acquireTimeoutMs,
    maxHoldMs: Math.max(60_000, 4 * config.deel.timeoutMs),
  });
  const purge = () => {
    storage.purgeExpired().catch((error: unknown) => log.warn({ err: error, postgres: where }, "could not sweep expired keys; the next sweep tries again"));
  };
  purge();
  const sweeper = setInterval(purge, POSTGRES_PURGE_EVERY_MS);
  sweeper.unref();
  return withJobs(assemble(store, budget, lock), storage, config, async () => {
    clearInterval(sweeper);
    await Promise.all([closePostgresPool(pool), closePostgresPool(lockPool)]);
  });
}
