/**
 * The connection pool a gateway process shares between the ledger, the revocation jobs, per-profile
 * ordering and the organization's Deel budget (when `SESSION_STORE_URL=postgres://…`).
 *
 * Tuned, like the Redis connection, to fail fast rather than queue:
 * - `connectionTimeoutMillis`: a PostgreSQL that does not accept a connection costs at most this long;
 * - `statement_timeout` (server side) and `query_timeout` (client side, a little longer): a statement
 *   that runs too long is cancelled, and a server that stops answering altogether is given up on;
 * - every connection's `search_path` is the deployment's schema (`POSTGRES_SCHEMA`, one schema =
 *   one organization), so statements name tables without a schema;
 * - a transaction left idle (a stalled or paused replica) is ended by the server after the same time;
 * - a connection that breaks, idle or checked out (a server restart, a cut network), is reported,
 *   never fatal; an idle one is dropped from the pool, a checked-out one by its holder;
 * - nothing waits for PostgreSQL to come back: a connection that cannot be made fails at once, and
 *   the next operation after it returns connects again (no restart).
 *
 * TLS, host, port, database and credentials come from the URL, as libpq reads them
 * (`?sslmode=require`, `verify-full` with `sslrootcert=…`).
 */
import pg from "pg";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type QueryConfig = pg.QueryConfig;

/** How one deployment uses PostgreSQL (README: Configuration). */
export interface PostgresSettings {
  /** The schema every table lives in (`POSTGRES_SCHEMA`, default `public`); one schema = one organization. */
  readonly schema: string;
  /** Connections per process for the ledger, jobs and budget (`POSTGRES_POOL_SIZE`, default 10). */
  readonly poolSize: number;
  /** Longest a statement may run before PostgreSQL cancels it (`POSTGRES_STATEMENT_TIMEOUT_MS`, default 5000). */
  readonly statementTimeoutMs: number;
}

/** A schema name as the gateway accepts it: it goes into `search_path` unquoted. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PostgresPoolOptions {
  /** Shown in `pg_stat_activity`. */
  name?: string;
  /** Connect + handshake deadline. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Overrides `settings.poolSize` (the profile lock's own pool). */
  size?: number;
  /** An idle connection failed (server gone, connection cut); called once per failure. */
  onError?: (error: Error) => void;
}

/** Safe to log: the host, port and database of a postgres URL, never its credentials. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.hostname}${parsed.port === "" ? "" : `:${parsed.port}`}${parsed.pathname}`;
  } catch {
    return "postgres (unparseable URL)";
  }
}

/** Opens a pool (connections are made on first use). See the module comment. */
export function createPostgresPool(url: string, settings: PostgresSettings, options: PostgresPoolOptions = {}): Pool {
  if (!SCHEMA_NAME.test(settings.schema)) throw new TypeError(`not a schema name the gateway accepts: "${settings.schema}"`);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.size ?? settings.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
    idleTimeoutMillis: 30_000,
    statement_timeout: settings.statementTimeoutMs,
    // A transaction left open by a stalled replica (the budget's row lock) ends on its own.
    idle_in_transaction_session_timeout: settings.statementTimeoutMs,
    query_timeout: settings.statementTimeoutMs + 1000,
    application_name: options.name ?? "worker-session-gateway",
    options: `-c search_path=${settings.schema}`,
    keepAlive: true,
  });
  // Without a listener, an idle connection's failure is an uncaught 'error' event: the process dies.
  pool.on("error", (error) => options.onError?.(error));
  // The same holds for a connection while it is checked out (a profile lock's, held for a whole
  // turn; the budget's transaction): the pool listens only to idle ones. Its holder sees the failure
  // as its query's rejection and releases it broken; the event itself is only reported.
  pool.on("connect", (client) => {
    client.on("error", (error) => options.onError?.(error));
  });
  return pool;
}

/** Closes the pool: waits for checked-out connections to come back, then ends every connection. */
export async function closePostgresPool(pool: Pool): Promise<void> {
  if (pool.ended) return;
  await pool.end();
}
