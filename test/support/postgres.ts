/**
 * Whether the PostgreSQL suites run, and helpers for them.
 *
 * PostgreSQL is `DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/test, probed once per test
 * file with a short timeout. When it does not answer: with `REQUIRE_POSTGRES=1` (CI) the importing
 * test file fails loudly; otherwise the PostgreSQL suites are skipped and one line on stderr says
 * which suite and why. Every test works in a schema of its own (`uniqueSchema`), created on first
 * use and dropped afterwards (`dropSchema`): nothing a test did not create is ever dropped.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe } from "vitest";
import { closePostgresPool, createPostgresPool, describePostgresUrl, type Pool } from "../../src/postgres/connection.js";
import { migrate } from "../../src/postgres/migrations.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { Ledger } from "../../src/sessions/ledger.js";
import type { PostgresStoreSettings } from "../../src/sessions/store-config.js";
import type { StoreBackend } from "./store-contract.js";

const explicitUrl = process.env.DATABASE_URL?.trim();
export const DATABASE_URL = explicitUrl !== undefined && explicitUrl !== "" ? explicitUrl : "postgres://postgres@127.0.0.1:5432/test";
export const POSTGRES_REQUIRED = process.env.REQUIRE_POSTGRES === "1";

/** Null when PostgreSQL answered; otherwise why not. */
async function probe(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000, query_timeout: 1000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (error) {
    return error instanceof Error ? error.message || String(error) : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const failure = await probe(DATABASE_URL);
export const postgresAvailable = failure === null;
const source = explicitUrl !== undefined && explicitUrl !== "" ? "DATABASE_URL" : "the default";
const why = failure === null ? "" : `PostgreSQL at ${describePostgresUrl(DATABASE_URL)} (${source}) did not answer: ${failure}`;

if (failure !== null && POSTGRES_REQUIRED) {
  throw new Error(`REQUIRE_POSTGRES=1, but ${why}. Start PostgreSQL (see .ci/run) or unset REQUIRE_POSTGRES.`);
}

/** `describe` for a suite that needs PostgreSQL: skipped, with one line saying so, when it is absent. */
export function describePostgres(name: string, body: () => void): void {
  if (!postgresAvailable) {
    process.stderr.write(`[postgres] SKIPPED "${name}": ${why}. Set DATABASE_URL or start PostgreSQL on 127.0.0.1:5432 to run it.\n`);
  }
  describe.skipIf(!postgresAvailable)(name, body);
}

/** A schema name no other test (or test run) uses. */
export function uniqueSchema(label = "t"): string {
  return `wsgtest_${label}_${randomBytes(5).toString("hex")}`;
}

/** Drops a schema a test created (by its unique name), with everything in it. */
export async function dropSchema(schema: string, url = DATABASE_URL): Promise<void> {
  if (!schema.startsWith("wsgtest_")) throw new Error(`refusing to drop "${schema}": tests drop only the schemas they created`);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** The gateway's settings for `schema`, with test defaults. */
export function postgresSettings(schema: string, overrides: Partial<PostgresStoreSettings> = {}): PostgresStoreSettings {
  return { schema, poolSize: 4, statementTimeoutMs: 5_000, retentionMs: 7 * 24 * 3600 * 1000, ...overrides };
}

/**
 * For a suite: pools on migrated schemas, each closed, and each schema dropped, after the suite.
 * `opened(schema)` opens another pool (another "replica") on the same schema.
 */
export function suitePostgres(label: string): { schema: string; opened: (schema?: string) => Promise<Pool>; fresh: () => string } {
  const schema = uniqueSchema(label);
  const schemas = new Set<string>([schema]);
  const pools: Pool[] = [];
  afterAll(async () => {
    for (const pool of pools) await closePostgresPool(pool);
    for (const created of schemas) await dropSchema(created);
  });
  return {
    schema,
    fresh: () => {
      const another = uniqueSchema(label);
      schemas.add(another);
      return another;
    },
    opened: async (on = schema) => {
      schemas.add(on);
      const pool = createPostgresPool(DATABASE_URL, postgresSettings(on), { name: "wsg-test" });
      pools.push(pool);
      await migrate(pool, on);
      return pool;
    },
  };
}

/** The gateway's PostgreSQL ledger on `pool` (left open: its owner closes it). */
export function postgresLedger(pool: Pool, retentionMs: number): Ledger {
  const storage = createStorage({ kind: "postgres", url: DATABASE_URL }, { pool, postgres: postgresSettings("unused", { retentionMs }) });
  return new Ledger(storage, { retentionMs });
}

/** Statement names a pool sent (`name` of each query config), to count round trips. */
export function countStatements(pool: Pool): () => string[] {
  const issued: string[] = [];
  const original = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (config: unknown, ...rest: unknown[]) => {
    issued.push(typeof config === "object" && config !== null && "name" in config ? String((config).name) : String(config));
    return original(config, ...rest);
  };
  return () => issued;
}

/**
 * A ledger backend for the shared contracts on PostgreSQL: a fresh schema per test (each starts
 * from an empty ledger), dropped when the test closes it.
 */
export async function freshPostgresLedger(retentionMs: number): Promise<StoreBackend> {
  const schema = uniqueSchema("ledger");
  const pools: Pool[] = [];
  const open = async () => {
    const pool = createPostgresPool(DATABASE_URL, postgresSettings(schema), { name: "wsg-test" });
    pools.push(pool);
    await migrate(pool, schema);
    return pool;
  };
  return {
    store: postgresLedger(await open(), retentionMs),
    otherWriter: async () => postgresLedger(await open(), retentionMs),
    now: () => Date.now(),
    close: async () => {
      for (const pool of pools) await closePostgresPool(pool);
      await dropSchema(schema);
    },
  };
}
