/**
 * Whether the Redis suites run, and helpers for them.
 *
 * Redis is `REDIS_URL`, else 127.0.0.1:6379, probed once per test file with a short timeout. When it
 * does not answer: with `REQUIRE_REDIS=1` (CI) the importing test file fails loudly; otherwise the
 * Redis suites are skipped and one line on stderr says which suite and why.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe } from "vitest";
import { createRedisConnection, describeRedisUrl, waitUntilReady } from "../../src/redis/connection.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { Ledger } from "../../src/sessions/ledger.js";
import type { StoreBackend } from "./store-contract.js";
import { freePort } from "./ports.js";

const explicitUrl = process.env.REDIS_URL?.trim();
export const REDIS_URL = explicitUrl !== undefined && explicitUrl !== "" ? explicitUrl : "redis://127.0.0.1:6379";
export const REDIS_REQUIRED = process.env.REQUIRE_REDIS === "1";

/** Null when Redis answered PING; otherwise why not. */
async function probe(url: string): Promise<string | null> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 700,
    commandTimeout: 700,
    retryStrategy: () => null,
  });
  let cause: string | undefined;
  client.on("error", (error: Error) => {
    cause ??= error.message;
  });
  try {
    await client.connect();
    const pong = await client.ping();
    return pong === "PONG" ? null : `PING answered ${String(pong)}`;
  } catch (error) {
    // The connection error itself (ECONNREFUSED …) arrives as an event; the rejection only says "closed".
    return (cause ?? (error instanceof Error ? error.message : String(error))).replace(/\.$/, "");
  } finally {
    client.disconnect();
  }
}

const failure = await probe(REDIS_URL);
export const redisAvailable = failure === null;
const source = explicitUrl !== undefined && explicitUrl !== "" ? "REDIS_URL" : "the default";
const why = failure === null ? "" : `Redis at ${describeRedisUrl(REDIS_URL)} (${source}) did not answer: ${failure}`;

if (failure !== null && REDIS_REQUIRED) {
  throw new Error(`REQUIRE_REDIS=1, but ${why}. Start redis-server (see .ci/run) or unset REQUIRE_REDIS.`);
}

/** `describe` for a suite that needs Redis: skipped, with one line saying so, when Redis is absent. */
export function describeRedis(name: string, body: () => void): void {
  if (!redisAvailable) {
    process.stderr.write(`[redis] SKIPPED "${name}": ${why}. Set REDIS_URL or start redis-server on 127.0.0.1:6379 to run it.\n`);
  }
  describe.skipIf(!redisAvailable)(name, body);
}

/** A key prefix no other test (or test run) uses. */
export function uniquePrefix(label = "t"): string {
  return `wsgtest:${label}:${randomBytes(5).toString("hex")}:`;
}

/** A fresh fail-fast connection (the gateway's own settings), ready to use. */
export async function connect(url = REDIS_URL): Promise<Redis> {
  const client = createRedisConnection(url, { name: "wsg-test" });
  if (!(await waitUntilReady(client, 3000))) {
    client.disconnect();
    throw new Error(`Redis at ${describeRedisUrl(url)} did not become ready`);
  }
  return client;
}

/** Deletes every key under `prefix` (SCAN, never FLUSH*). */
export async function deletePrefix(prefix: string, url = REDIS_URL): Promise<number> {
  const client = await connect(url);
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) deleted += await client.del(...keys);
    } while (cursor !== "0");
  } finally {
    client.disconnect();
  }
  return deleted;
}

export const redisServerInstalled = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;

/** How a throwaway redis-server keeps its data. */
export interface ThrowawayRedisOptions {
  /**
   * Keep an append-only file in this directory (`appendonly yes`, `dir`), so that a restart after a
   * SIGKILL finds what was written. Without it, nothing is kept: a restart starts empty.
   */
  dir?: string;
  /**
   * When the append-only file is flushed to disk (`appendfsync`). Default `always`: every write a
   * client was told succeeded survives a SIGKILL (`everysec` may lose the last second of writes).
   */
  appendfsync?: "always" | "everysec" | "no";
}

/**
 * A throwaway redis-server of our own on a free port, to kill and start again (on the same port and,
 * with `dir`, the same data): outage tests never touch the shared one.
 */
export class ThrowawayRedis {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly options: ThrowawayRedisOptions,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(options: ThrowawayRedisOptions = {}): Promise<ThrowawayRedis> {
    const server = new ThrowawayRedis(await freePort(), options);
    await server.start();
    return server;
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts (or restarts, on the same port and directory) and resolves once it answers PING. */
  async start(): Promise<void> {
    if (this.child !== undefined) return;
    const persistence =
      this.options.dir === undefined
        ? ["--save", "", "--appendonly", "no"]
        : ["--save", "", "--appendonly", "yes", "--appendfsync", this.options.appendfsync ?? "always", "--dir", this.options.dir];
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", ...persistence, "--daemonize", "no", "--loglevel", "warning"],
      { stdio: "ignore" },
    );
    this.child = child;
    child.once("exit", () => {
      if (this.child === child) this.child = undefined;
    });
    // A restart replays the append-only file before it answers; the port may also linger briefly.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if ((await probe(this.url)) === null) return;
      if (this.child !== child) throw new Error(`the throwaway redis-server on port ${this.port} exited at start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`the throwaway redis-server on port ${this.port} did not start`);
  }

  /** Kills it at once (SIGKILL: an outage, not a shutdown) and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }
}

/**
 * For a suite: a unique key prefix and a way to open connections, all closed and the prefix's keys
 * deleted after the suite.
 */
export function suiteRedis(label: string): { prefix: string; opened: () => Promise<Redis>; track: (connection: Redis) => void } {
  const prefix = uniquePrefix(label);
  const connections: Redis[] = [];
  afterAll(async () => {
    for (const connection of connections) connection.disconnect();
    await deletePrefix(prefix);
  });
  return {
    prefix,
    opened: async () => {
      const connection = await connect();
      connections.push(connection);
      return connection;
    },
    track: (connection) => {
      connections.push(connection);
    },
  };
}

/** The gateway's Redis ledger under `keyPrefix`, on `connection` (left open: its owner closes it). */
export function redisLedger(connection: Redis, keyPrefix: string, retentionMs: number): Ledger {
  const storage = createStorage({ kind: "redis", url: REDIS_URL }, { redis: { keyPrefix, retentionMs }, connection });
  return new Ledger(storage, { retentionMs });
}

/**
 * A ledger backend for the shared contracts on Redis: a fresh key prefix per test (each starts
 * from an empty ledger, as the in-process stores do), deleted when the test closes it.
 */
export async function freshRedisLedger(opened: () => Promise<Redis>, retentionMs: number): Promise<StoreBackend> {
  const own = uniquePrefix("ledger");
  return {
    store: redisLedger(await opened(), own, retentionMs),
    otherWriter: async () => redisLedger(await opened(), own, retentionMs),
    now: () => Date.now(),
    close: async () => {
      await deletePrefix(own);
    },
  };
}
