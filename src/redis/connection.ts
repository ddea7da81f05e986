/**
 * The one Redis connection a gateway process shares between the ledger, the organization's Deel
 * budget and per-profile ordering (when `SESSION_STORE_URL=redis://…` or `rediss://…`).
 *
 * Tuned to fail fast and heal by itself, never to queue:
 * - `enableOfflineQueue: false`: a command issued while disconnected rejects at once instead of
 *   waiting for a reconnect that may never come (so `/readyz` answers 503 within milliseconds, and a
 *   GraphQL operation fails with a clear code instead of hanging);
 * - `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false`: a command in flight when
 *   the connection drops is rejected, never silently replayed later (an INCR or a reservation must
 *   not happen twice);
 * - `commandTimeout`: a Redis that accepts the connection but does not answer (paused, overloaded,
 *   half-open network) costs at most this long per command;
 * - `retryStrategy`: reconnects forever, backing off to one attempt per second, so everything
 *   recovers on its own once Redis is back, without a restart.
 */
import { Redis } from "ioredis";

export type { Redis } from "ioredis";

export interface RedisConnectionOptions {
  /** Shown in `CLIENT LIST`. */
  name?: string;
  /** Per-command deadline. Default 1500 ms. */
  commandTimeoutMs?: number;
  /** TCP connect + handshake deadline. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Longest pause between reconnection attempts. Default 1000 ms. */
  maxReconnectDelayMs?: number;
  /**
   * The connection was lost or could not be made (refused, reset, timeouts). Called once per outage,
   * and again only after the connection was ready in between, so a long outage does not flood the log.
   */
  onError?: (error: Error) => void;
  /** Called once when the connection is ready again after an error. */
  onRecovered?: () => void;
}

/** Safe to log: the host and port of a redis URL, never its password. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.hostname}${parsed.port === "" ? "" : `:${parsed.port}`}`;
  } catch {
    return "redis (unparseable URL)";
  }
}

/** Opens (in the background) a fail-fast, self-healing connection. See the module comment. */
export function createRedisConnection(url: string, options: RedisConnectionOptions = {}): Redis {
  const maxDelay = options.maxReconnectDelayMs ?? 1000;
  const client = new Redis(url, {
    connectionName: options.name ?? "worker-session-gateway",
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs ?? 1500,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), maxDelay),
    enableReadyCheck: true,
    lazyConnect: false,
    keepAlive: 10_000,
  });
  let failing = false;
  const down = (error: Error) => {
    if (failing) return;
    failing = true;
    options.onError?.(error);
  };
  // Without a listener, ioredis reports every failed attempt on stderr ("Unhandled error event").
  client.on("error", down);
  // A lost connection is an outage even when the first reconnection attempt succeeds; a QUIT is not
  // (the status is "end" by the time this runs).
  client.on("close", () => {
    setImmediate(() => {
      if (client.status !== "end") down(new Error("the connection to Redis was lost"));
    });
  });
  client.on("ready", () => {
    if (!failing) return;
    failing = false;
    options.onRecovered?.();
  });
  return client;
}

/**
 * Resolves true once the connection is ready, or false after `timeoutMs`. Start-up waits on it
 * briefly (commands are not queued while connecting), but never refuses to start: a replica that
 * comes up during a Redis outage reports 503 on `/readyz` and heals when Redis returns.
 */
export function waitUntilReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === "ready") return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.off("ready", onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    client.on("ready", onReady);
  });
}

/** Closes the connection: QUIT when connected (replies drain first), otherwise just disconnect. */
export async function closeRedisConnection(client: Redis): Promise<void> {
  if (client.status === "end") return;
  if (client.status === "ready") {
    try {
      await client.quit();
      return;
    } catch {
      // fall through: the connection is going away anyway
    }
  }
  client.disconnect(false);
}

/**
 * A Lua script run as a custom command of a connection (ioredis `defineCommand`). ioredis sends it
 * by its SHA1 (EVALSHA, one short round trip), and the whole script (EVAL) on a connection's first
 * use of it and again after Redis answers NOSCRIPT (a restart or SCRIPT FLUSH emptied its cache).
 */
export interface LuaCommand {
  /**
   * How many of the call's leading arguments are keys (`KEYS[1..n]`); the rest are `ARGV`. Null: the
   * call's first argument says how many keys follow (a script over any number of keys).
   */
  readonly numberOfKeys: number | null;
  readonly lua: string;
}

/** A defined command: its keys first, then its arguments; resolves to the script's reply. */
export type LuaCommandCall = (...keysThenArgs: Array<string | number>) => Promise<unknown>;

/** A connection on which the commands named `Name` are defined. */
export type RedisWithCommands<Name extends string> = Redis & { readonly [N in Name]: LuaCommandCall };

/** The scripts each connection was given, by command name. */
const definedScripts = new WeakMap<Redis, Map<string, string>>();

/**
 * Defines `commands` on `client` and returns the same connection, typed with them.
 *
 * Idempotent per connection, since several users share one (the ledger, ordering, the budget): a
 * name already defined with the same script is left alone. A name that would shadow a built-in
 * command, or that is already defined with another script, throws, instead of letting one user run
 * another's script.
 *
 * Keys are passed to Redis as given (`REDIS_KEY_PREFIX` is already part of them, see keys.ts);
 * on a connection opened with ioredis's own `keyPrefix`, that prefix is added to the script's keys
 * exactly as to any other command's.
 */
export function defineLuaCommands<const Name extends string>(client: Redis, commands: Readonly<Record<Name, LuaCommand>>): RedisWithCommands<Name> {
  let defined = definedScripts.get(client);
  if (defined === undefined) {
    defined = new Map();
    definedScripts.set(client, defined);
  }
  for (const [name, command] of Object.entries<LuaCommand>(commands)) {
    const existing = defined.get(name);
    if (existing === command.lua) continue;
    if (existing !== undefined || name in client || `${name}Buffer` in client) {
      throw new Error(`Cannot define the Redis command ${name}: the name is already taken on this connection`);
    }
    client.defineCommand(name, command.numberOfKeys === null ? { lua: command.lua } : { numberOfKeys: command.numberOfKeys, lua: command.lua });
    defined.set(name, command.lua);
  }
  return client as RedisWithCommands<Name>;
}
