/**
 * Whether the PostgreSQL suites run, and helpers for them.
 *
 * PostgreSQL is `DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/test, probed once per test
 * file with a short timeout. When it does not answer: with `REQUIRE_POSTGRES=1` (CI) the importing
 * test file fails loudly; otherwise the PostgreSQL suites are skipped and one line on stderr says
 * which suite and why. Every test works in a schema of its own (`uniqueSchema`), created on first
 * use and dropped afterwards (`dropSchema`): nothing a test did not create is ever dropped.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe } from "vitest";
import { closePostgresPool, createPostgresPool, describePostgresUrl, type Pool } from "../../src/postgres/connection.js";
import { migrate } from "../../src/postgres/migrations.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { Ledger } from "../../src/sessions/ledger.js";
import type { PostgresStoreSettings } from "../../src/sessions/store-config.js";
import { freePort } from "./ports.js";
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

/**
 * The installed PostgreSQL server binaries (`initdb`, `pg_ctl`): the newest of
 * /usr/lib/postgresql/<version>/bin, or `POSTGRES_BIN_DIR`; null when there are none.
 */
export function postgresBinDir(): string | null {
  const explicit = process.env.POSTGRES_BIN_DIR?.trim();
  const candidates =
    explicit !== undefined && explicit !== ""
      ? [explicit]
      : (existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql") : [])
          .filter((version) => /^\d+(\.\d+)?$/.test(version))
          .sort((x, y) => Number(y) - Number(x))
          .map((version) => join("/usr/lib/postgresql", version, "bin"));
  return candidates.find((dir) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"))) ?? null;
}

/**
 * A throwaway PostgreSQL cluster of our own (initdb into a temporary directory, a free port, trust
 * authentication, its unix socket in that directory), to stop at once and start again: a restart
 * test never touches the shared server on 5432. Run as the `postgres` OS user when this process is
 * root (PostgreSQL refuses to run as root).
 */
export class ThrowawayPostgres {
  private running = false;

  private constructor(
    readonly port: number,
    private readonly bin: string,
    private readonly root: string,
  ) {}

  /** The cluster's own database `postgres`, as user `postgres`, over TCP. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private get data(): string {
    return join(this.root, "data");
  }

  /** initdb, then start. */
  static async create(bin: string): Promise<ThrowawayPostgres> {
    const root = mkdtempSync(join(tmpdir(), "wsg-pg-"));
    if (process.getuid?.() === 0) {
      const owner = spawnSync("chown", ["-R", "postgres:postgres", root]);
      if (owner.status !== 0) throw new Error(`could not hand ${root} to the postgres user: ${owner.stderr.toString()}`);
    }
    const server = new ThrowawayPostgres(await freePort(), bin, root);
    server.run("initdb", ["-D", server.data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
    await server.start();
    return server;
  }

  /** Starts (or restarts, on the same port and data) and resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    // fsync off: a killed server loses nothing the OS already has (only a machine crash would).
    const options = `-p ${this.port} -k ${this.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
    this.run("pg_ctl", ["-D", this.data, "-o", options, "-l", join(this.root, "server.log"), "-w", "-t", "30", "start"]);
    this.running = true;
  }

  /** Stops it at once (`pg_ctl -m immediate`: every backend killed, as in a crash) and waits until it is gone. */
  async stopImmediately(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.run("pg_ctl", ["-D", this.data, "-m", "immediate", "-w", "stop"]);
  }

  /** Stops it (if running) and removes its directory. */
  async destroy(): Promise<void> {
    await this.stopImmediately().catch(() => undefined);
    rmSync(this.root, { recursive: true, force: true });
  }

  /** The server's log so far (for failure messages). */
  log(): string {
    const file = join(this.root, "server.log");
    return existsSync(file) ? readFileSync(file, "utf8") : "";
  }

  private run(tool: string, args: string[]): void {
    const command = join(this.bin, tool);
    const asRoot = process.getuid?.() === 0;
    const result = asRoot
      ? spawnSync("runuser", ["-u", "postgres", "--", command, ...args], { cwd: this.root, encoding: "utf8" })
      : spawnSync(command, args, { cwd: this.root, encoding: "utf8" });
    if (result.status !== 0) {
      throw new Error(`${tool} ${args.join(" ")} failed (${result.status ?? result.signal}): ${result.stderr}${result.stdout}`);
    }
  }
}
