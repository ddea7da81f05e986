import { readFileSync } from "node:fs";
import { isLoopbackHost } from "./sessions/redirects.js";

/**
 * Where the session ledger lives. Parsed once from `SESSION_STORE_URL`.
 */
export type StoreConfig =
  | { readonly kind: "memory" }
  | { readonly kind: "sqlite"; readonly path: string }
  | { readonly kind: "redis"; readonly url: string };

/** Settings for a Redis-backed deployment (`SESSION_STORE_URL=redis://…`). */
export interface RedisSettings {
  /** Prefix of every key (`REDIS_KEY_PREFIX`, default `wsg:`). Replicas of one deployment share it; one prefix = one organization. */
  readonly keyPrefix: string;
  /** How long a record stays readable after its session expires (`SESSION_RETENTION_DAYS`, default 7), in ms. */
  readonly retentionMs: number;
}

export type JwtAlgorithm = "RS256" | "ES256" | "PS256" | "EdDSA" | "HS256";

export interface AuthConfig {
  /** Verify caller JWTs against this JWKS (asymmetric algorithms only). */
  readonly jwksUrl?: string;
  /** Or verify HS256 with this shared secret. */
  readonly jwtSecret?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Claim that lists the caller's Deel profile ids. */
  readonly profileClaim: string;
  /** Asymmetric algorithms accepted from the JWKS. */
  readonly jwksAlgorithms: readonly JwtAlgorithm[];
  /** How long to wait for the JWKS endpoint before giving up on a request. */
  readonly jwksTimeoutMs: number;
}

export interface Config {
  readonly production: boolean;
  /**
   * Local mode: no Deel token outside production. `main` then starts the built-in Deel sandbox
   * and a dev signing secret, and runs on the config `startLocalMode` derives from this one.
   */
  readonly localMode: boolean;
  readonly host: string;
  readonly port: number;
  readonly deel: {
    readonly apiUrl: string;
    /** The organization token. Empty only in local mode before the sandbox is started. */
    readonly token: string;
    readonly timeoutMs: number;
    /** The organization's Deel budget (requests per rolling second); 0 turns pacing off. */
    readonly rateLimitRps: number;
    /** Added to the budget's one-second window, for network jitter between us and Deel's clock. */
    readonly rateLimitMarginMs: number;
    /** Attempts per call, the first included (1 = never retry). */
    readonly maxAttempts: number;
    /** First retry backoff; doubles per retry, with jitter, capped, and always inside the deadline. */
    readonly retryBaseMs: number;
    /** Consecutive upstream failures (5xx, timeouts, connection errors) that open the circuit; 0 = no breaker. */
    readonly breakerThreshold: number;
    /** How long an open circuit fails fast before one probe call is let through. */
    readonly breakerCooldownMs: number;
  };
  readonly auth: AuthConfig;
  readonly store: StoreConfig;
  /** Used when `store.kind` is `redis`: the ledger, the shared Deel budget and per-profile locks live there. */
  readonly redis: RedisSettings;
  readonly callerMutationsPerMinute: number;
  readonly corsOrigins: readonly string[];
  /** Origins a magic link's `onSuccessRedirectUrl` may point at (`MAGIC_LINK_REDIRECT_ORIGINS`); empty refuses every one. */
  readonly magicLinkRedirectOrigins: readonly string[];
  readonly routerSecret?: string;
  readonly logLevel: string;
  /** How long SIGTERM waits for in-flight requests before closing anyway. */
  readonly shutdownGraceMs: number;
  readonly http: HttpSettings;
  /** Most `_entities` representations one request may carry, summed over aliases. */
  readonly maxEntityRepresentations: number;
  /** The kill switch's job runner (README: Incident response). */
  readonly revocation: {
    /** A replica's hold on a running job; renewed every quarter of it, claimable by another once expired. */
    readonly leaseMs: number;
    /** How often every replica looks for running jobs nobody holds. */
    readonly pollMs: number;
  };
  /** Local mode only: what Apollo Sandbox opens with (set by `startLocalMode`, never from the environment). */
  readonly sandboxPrefill?: SandboxPrefill;
}

/** An operation, its variables and request headers that the embedded Sandbox starts with. */
export interface SandboxPrefill {
  readonly document: string;
  readonly variables: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
}

/** Bounds on client connections, so that a slow or idle client cannot hold the server. */
export interface HttpSettings {
  /** Whole request, headers and body, must arrive within this (`HTTP_REQUEST_TIMEOUT_MS`). */
  readonly requestTimeoutMs: number;
  /** Idle keep-alive connections close after this (`HTTP_KEEP_ALIVE_TIMEOUT_MS`). */
  readonly keepAliveTimeoutMs: number;
  /** Open connections past this are dropped at once (`HTTP_MAX_CONNECTIONS`). */
  readonly maxConnections: number;
}

/** A setting that stops start-up. The message names the variable; it never echoes a secret value. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const JWKS_ALGORITHMS: JwtAlgorithm[] = ["RS256", "ES256", "PS256", "EdDSA"];

type Env = Record<string, string | undefined>;

/** Reads a variable, treating an empty or blank value as unset. */
function read(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, but got "${raw}"`);
  }
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, but got ${value}`);
  }
  return value;
}

/**
 * A value as it may be echoed in a refusal: everything between the scheme and the last `@` (where
 * a `user:password` would be) is replaced, even when the value does not parse as a URL, and the
 * length is bounded.
 */
export function redactForMessage(value: string): string {
  const at = value.lastIndexOf("@");
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/*/.exec(value)?.[0] ?? "";
  return (at === -1 ? value : `${scheme}[redacted]${value.slice(at)}`).slice(0, 200);
}

/** A comma-separated list of origins (`https://app.example.com`), each checked to be exactly an origin. */
function originList(env: Env, name: string): string[] {
  const origins = (read(env, name) ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.origin !== origin) {
      throw new ConfigError(`${name} must list origins such as https://app.example.com, but got "${redactForMessage(origin)}"`);
    }
  }
  return origins;
}

/** A `1`/`true` or `0`/`false` switch, off when unset. */
function flag(env: Env, name: string): boolean {
  const raw = read(env, name);
  if (raw === undefined) return false;
  if (raw === "1" || raw.toLowerCase() === "true") return true;
  if (raw === "0" || raw.toLowerCase() === "false") return false;
  throw new ConfigError(`${name} must be 1 or 0 (true or false), but got "${raw.slice(0, 40)}"`);
}

function httpUrl(env: Env, name: string, fallback?: string): string | undefined {
  const raw = read(env, name) ?? fallback;
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, but got "${redactForMessage(raw)}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${name} must be an http(s) URL, but got protocol "${url.protocol}"`);
  }
  if (url.username || url.password) {
    throw new ConfigError(`${name} must not carry credentials in the URL`);
  }
  if (url.search !== "" || url.hash !== "") {
    throw new ConfigError(`${name} must be a base URL without a query or fragment, but got "${url.origin}${url.pathname}" followed by one`);
  }
  return raw;
}

/** Parses `SESSION_STORE_URL`: `memory:`, `sqlite:<path>` or `redis://…` / `rediss://…`. */
export function parseStoreUrl(raw: string, name = "SESSION_STORE_URL"): StoreConfig {
  if (raw === "memory:") return { kind: "memory" };
  if (raw.startsWith("sqlite:")) {
    const path = raw.slice("sqlite:".length);
    if (path === "") throw new ConfigError(`${name} must name a file after "sqlite:", e.g. sqlite:./data/worker-sessions.db`);
    return { kind: "sqlite", path };
  }
  if (raw.startsWith("redis://") || raw.startsWith("rediss://")) {
    try {
      new URL(raw);
    } catch {
      throw new ConfigError(`${name} is not a valid redis URL`);
    }
    return { kind: "redis", url: raw };
  }
  // The value may hold a password (redis://:secret@host), so it is not echoed.
  throw new ConfigError(`${name} must be "memory:", "sqlite:<path>" or "redis://…", but got an unsupported value`);
}

/** `REDIS_KEY_PREFIX`: printable, no spaces, at most 64 characters. */
function redisKeyPrefix(env: Env): string {
  const prefix = read(env, "REDIS_KEY_PREFIX") ?? "wsg:";
  if (!/^[A-Za-z0-9:._{}-]{1,64}$/.test(prefix)) {
    throw new ConfigError(`REDIS_KEY_PREFIX must be 1 to 64 characters from A-Z a-z 0-9 : . _ - { }, e.g. "wsg:", but got "${prefix.slice(0, 80)}"`);
  }
  return prefix;
}

function readDeelToken(env: Env): string | undefined {
  const direct = read(env, "DEEL_API_TOKEN");
  const file = read(env, "DEEL_API_TOKEN_FILE");
  if (direct !== undefined && file !== undefined) {
    throw new ConfigError("Set DEEL_API_TOKEN or DEEL_API_TOKEN_FILE, not both");
  }
  if (file !== undefined) {
    let content: string;
    try {
      content = readFileSync(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
      throw new ConfigError(`DEEL_API_TOKEN_FILE must name a readable file, but reading "${file}" failed (${code})`);
    }
    const token = content.trim();
    if (token === "") throw new ConfigError(`DEEL_API_TOKEN_FILE names "${file}", which is empty`);
    return checkToken("DEEL_API_TOKEN_FILE", token);
  }
  return direct === undefined ? undefined : checkToken("DEEL_API_TOKEN", direct);
}

/** A token goes into an HTTP header: it must be one printable line. Its value is never echoed. */
function checkToken(name: string, token: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new ConfigError(`${name} must be a single printable token without spaces or line breaks`);
  }
  if (token.length < 16) {
    throw new ConfigError(`${name} looks truncated: a Deel organization token is longer than ${token.length} characters`);
  }
  return token;
}

/**
 * Turns the environment into a typed Config, once, at start-up. Every refusal names the variable,
 * what was expected and what was found, except for secrets, whose values are never echoed.
 */
export function loadConfig(env: Env = process.env): Config {
  const production = read(env, "NODE_ENV") === "production";
  const deelToken = readDeelToken(env);
  const localMode = !production && deelToken === undefined;

  if (production && deelToken === undefined) {
    throw new ConfigError("DEEL_API_TOKEN (or DEEL_API_TOKEN_FILE) is required when NODE_ENV=production: the organization token with the admin:worker scope");
  }

  const jwksUrl = httpUrl(env, "AUTH_JWKS_URL");
  const jwtSecret = read(env, "AUTH_JWT_SECRET");
  if (jwksUrl !== undefined && jwtSecret !== undefined) {
    throw new ConfigError("Set AUTH_JWKS_URL or AUTH_JWT_SECRET, not both");
  }
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < 32) {
    throw new ConfigError("AUTH_JWT_SECRET must be at least 32 bytes long for HS256");
  }
  if (!localMode && jwksUrl === undefined && jwtSecret === undefined) {
    throw new ConfigError("AUTH_JWKS_URL or AUTH_JWT_SECRET is required to verify callers when DEEL_API_TOKEN is set");
  }

  const algorithmsRaw = read(env, "AUTH_JWT_ALGORITHMS");
  const jwksAlgorithms = (algorithmsRaw ?? "RS256,ES256").split(",").map((a) => a.trim()) as JwtAlgorithm[];
  for (const algorithm of jwksAlgorithms) {
    if (!JWKS_ALGORITHMS.includes(algorithm)) {
      throw new ConfigError(`AUTH_JWT_ALGORITHMS must list ${JWKS_ALGORITHMS.join(", ")}, but got "${algorithm}"`);
    }
  }

  const profileClaim = read(env, "AUTH_PROFILE_CLAIM") ?? "deel_profile_ids";
  if (!/^[A-Za-z0-9_:./-]{1,128}$/.test(profileClaim)) {
    throw new ConfigError(`AUTH_PROFILE_CLAIM must be a claim name, but got "${profileClaim}"`);
  }

  const logLevel = read(env, "LOG_LEVEL") ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, but got "${logLevel}"`);
  }

  const corsOrigins = originList(env, "CORS_ORIGINS");
  const magicLinkRedirectOrigins = originList(env, "MAGIC_LINK_REDIRECT_ORIGINS");
  for (const origin of magicLinkRedirectOrigins) {
    const { protocol, hostname } = new URL(origin);
    if (protocol !== "https:" && !(protocol === "http:" && isLoopbackHost(hostname))) {
      throw new ConfigError(`MAGIC_LINK_REDIRECT_ORIGINS must list https origins (http only for localhost), but got "${redactForMessage(origin)}"`);
    }
  }

  const routerSecret = read(env, "ROUTER_SECRET");
  if (routerSecret !== undefined && routerSecret.length < 16) {
    throw new ConfigError("ROUTER_SECRET must be at least 16 characters long");
  }

  const issuer = read(env, "AUTH_ISSUER");
  const audience = read(env, "AUTH_AUDIENCE");
  const allowAnyIssuer = flag(env, "AUTH_ALLOW_ANY_ISSUER");
  if (production && !allowAnyIssuer && (issuer === undefined || audience === undefined)) {
    // Without both, any token the identity provider signs for another application is accepted here.
    const missing = [issuer === undefined ? "AUTH_ISSUER" : undefined, audience === undefined ? "AUTH_AUDIENCE" : undefined].filter(Boolean).join(" and ");
    throw new ConfigError(
      `${missing} ${missing.includes(" and ") ? "are" : "is"} required when NODE_ENV=production, so that tokens minted for other applications are refused; set AUTH_ALLOW_ANY_ISSUER=1 to accept any issuer and audience deliberately`,
    );
  }
  const auth: AuthConfig = {
    profileClaim,
    jwksAlgorithms,
    jwksTimeoutMs: integer(env, "AUTH_JWKS_TIMEOUT_MS", 2000, 100, 30_000),
    ...(jwksUrl === undefined ? {} : { jwksUrl }),
    ...(jwtSecret === undefined ? {} : { jwtSecret }),
    ...(issuer === undefined ? {} : { issuer }),
    ...(audience === undefined ? {} : { audience }),
  };

  return {
    production,
    localMode,
    host: read(env, "HOST") ?? (localMode ? "127.0.0.1" : "0.0.0.0"),
    port: integer(env, "PORT", 4000, 0, 65535),
    deel: {
      apiUrl: httpUrl(env, "DEEL_API_URL", "https://api.letsdeel.com/rest/v2") as string,
      token: deelToken ?? "",
      timeoutMs: integer(env, "DEEL_TIMEOUT_MS", 8000, 100, 120_000),
      rateLimitRps: integer(env, "DEEL_RATE_LIMIT_RPS", 5, 0, 10_000),
      rateLimitMarginMs: integer(env, "DEEL_RATE_LIMIT_MARGIN_MS", 100, 0, 1000),
      maxAttempts: integer(env, "DEEL_MAX_ATTEMPTS", 3, 1, 10),
      retryBaseMs: integer(env, "DEEL_RETRY_BASE_MS", 200, 1, 10_000),
      breakerThreshold: integer(env, "DEEL_BREAKER_THRESHOLD", 5, 0, 1000),
      breakerCooldownMs: integer(env, "DEEL_BREAKER_COOLDOWN_MS", 10_000, 100, 600_000),
    },
    auth,
    store: parseStoreUrl(read(env, "SESSION_STORE_URL") ?? "sqlite:./data/worker-sessions.db"),
    redis: {
      keyPrefix: redisKeyPrefix(env),
      retentionMs: integer(env, "SESSION_RETENTION_DAYS", 7, 0, 3650) * 24 * 3600 * 1000,
    },
    callerMutationsPerMinute: integer(env, "CALLER_MUTATIONS_PER_MINUTE", 60, 0, 1_000_000_000),
    corsOrigins,
    magicLinkRedirectOrigins,
    logLevel,
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 120_000),
    http: {
      requestTimeoutMs: integer(env, "HTTP_REQUEST_TIMEOUT_MS", 10_000, 500, 300_000),
      keepAliveTimeoutMs: integer(env, "HTTP_KEEP_ALIVE_TIMEOUT_MS", 5_000, 1_000, 300_000),
      maxConnections: integer(env, "HTTP_MAX_CONNECTIONS", 1_024, 1, 1_000_000),
    },
    maxEntityRepresentations: integer(env, "MAX_ENTITY_REPRESENTATIONS", 500, 1, 100_000),
    revocation: {
      leaseMs: integer(env, "REVOCATION_LEASE_MS", 15_000, 1_000, 600_000),
      pollMs: integer(env, "REVOCATION_POLL_MS", 3_000, 100, 600_000),
    },
    ...(routerSecret === undefined ? {} : { routerSecret }),
  };
}
