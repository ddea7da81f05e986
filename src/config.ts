import { GraphQLError, parse, type DocumentNode } from "graphql";
import {
  ConfigError,
  flag,
  httpUrl,
  integer,
  originList,
  parseStoreUrl,
  postgresSchema,
  read,
  readDeelToken,
  redactForMessage,
  redisKeyPrefix,
  type Env,
} from "./config-readers.js";
import { isLoopbackHost } from "./base/loopback.js";
import { TrustedDocuments, TrustedDocumentsError } from "./http/trusted-documents.js";
import { LIMITS, type RequestLimitSettings } from "./graphql/limits.js";
import { routerOnlyFieldsSelected } from "./graphql/router-fields.js";

import type { AuthConfig, JwtAlgorithm } from "./auth/settings.js";
import type { DeelSettings } from "./deel/create-deel.js";
import type { SandboxPrefill } from "./graphql/server.js";
import type { LogBudgetSettings } from "./http/log-budget.js";
import type { HttpSettings } from "./http/server.js";
import type { PostgresStoreSettings, RedisSettings, StoreConfig } from "./sessions/store-config.js";
import { readFederatedTracing, readTracingSettings, type TracingSettings } from "./tracing-config.js";

export { ConfigError, parseStoreUrl, redactForMessage } from "./config-readers.js";
export type { AuthConfig, JwtAlgorithm } from "./auth/settings.js";
export type { DeelSettings } from "./deel/create-deel.js";
export type { SandboxPrefill } from "./graphql/server.js";
export type { LogBudgetSettings } from "./http/log-budget.js";
export type { HttpSettings } from "./http/server.js";
export type { PostgresStoreSettings, RedisSettings, StoreConfig } from "./sessions/store-config.js";



export interface Config {
  readonly production: boolean;
  /**
   * Local mode: no Deel token outside production. `main` then starts the built-in Deel sandbox
   * and a dev signing secret, and runs on the config `startLocalMode` derives from this one.
   */
  readonly localMode: boolean;
  readonly host: string;
  readonly port: number;
  readonly deel: DeelSettings;
  readonly auth: AuthConfig;
  readonly store: StoreConfig;
  /** Used when `store.kind` is `redis`: the ledger, the shared Deel budget and per-profile locks live there. */
  readonly redis: RedisSettings;
  /**
   * Used when `store.kind` is `postgres`: the ledger, the revocation jobs, the shared Deel budget and
   * per-profile locks all live there (Redis is then not used, even when configured).
   */
  readonly postgres: PostgresStoreSettings;
  readonly callerMutationsPerMinute: number;
  /**
   * Browser origins CORS admits on `/graphql` (`CORS_ORIGINS`), exactly. Local mode admits Apollo
   * Sandbox's origin and every loopback origin on any port as well (src/http/server.ts); production
   * admits only these.
   */
  readonly corsOrigins: readonly string[];
  /** Origins a magic link's `onSuccessRedirectUrl` may point at (`MAGIC_LINK_REDIRECT_ORIGINS`); empty refuses every one. */
  readonly magicLinkRedirectOrigins: readonly string[];
  readonly routerSecret?: string;
  /**
   * `ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS`: with ROUTER_SECRET, a direct client (no
   * `Router-Authorization` at all) may still run a trusted document (README: Trusted documents).
   * Off by default: ROUTER_SECRET then refuses every request without the secret with 401. On only
   * with both ROUTER_SECRET and TRUSTED_DOCUMENTS set, and a manifest whose every document parses
   * and selects no router-only field (`_entities`, `_service`).
   */
  readonly routerSecretAdmitsTrustedClients: boolean;
  readonly logLevel: string;
  /** Warn and error lines per second per process, and how often drops are summarized (README: Errors). */
  readonly log: LogBudgetSettings;
  /** How long SIGTERM waits for in-flight requests before closing anyway. */
  readonly shutdownGraceMs: number;
  readonly http: HttpSettings;
  /** Most `_entities` representations one request may carry, summed over aliases. */
  readonly maxEntityRepresentations: number;
  /** Most an entity fetch may cost: Σ representations × guarded fields selected on each (`MAX_ENTITY_COST`). */
  readonly maxEntityCost: number;
  /**
   * The session history (README: Session history), on every backend: how long an event stays
   * (`SESSION_RETENTION_DAYS`, default 7), as set; the history keeps at least a day whatever this
   * says (sessions/history.ts `historyRetentionMs`).
   */
  readonly sessionHistory: { readonly retentionMs: number };
  /** The kill switch's job runner (README: Incident response). */
  readonly revocation: {
    /** A replica's hold on a running job; renewed every quarter of it, claimable by another once expired. */
    readonly leaseMs: number;
    /** How often every replica looks for running jobs nobody holds. */
    readonly pollMs: number;
  };
  /**
   * `TRUSTED_DOCUMENTS`: the manifest of the only documents a client (not the router) may run,
   * read and checked once here (README: Trusted documents). Unset: any document.
   */
  readonly trustedDocuments?: TrustedDocuments;
  /** The limits on what one GraphQL request may hold (README: Errors, "Request limits"). */
  readonly limits: RequestLimitSettings;
  /** Local mode only: what Apollo Sandbox opens with (set by `startLocalMode`, never from the environment). */
  readonly sandboxPrefill?: SandboxPrefill;
  /** OpenTelemetry tracing from the standard OTEL_* variables (README: Tracing); off by default. */
  readonly tracing: TracingSettings;
  /** Apollo's inline trace (ftv1) for routers that ask for it (`APOLLO_FEDERATED_TRACING`); off by default. */
  readonly apolloFederatedTracing: boolean;
}



const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const NODE_ENVS = ["production", "development", "test"] as const;

/**
 * `NODE_ENV`, lower-cased; undefined when unset. Any other value stops start-up: `Production` or
 * `prod` read as "not production" would start with introspection on and no issuer check.
 */
function nodeEnv(env: Env): (typeof NODE_ENVS)[number] | undefined {
  const raw = read(env, "NODE_ENV");
  if (raw === undefined) return undefined;
  const known = NODE_ENVS.find((name) => name === raw.toLowerCase());
  if (known === undefined) throw new ConfigError(`NODE_ENV must be ${NODE_ENVS.join(", ").replace(/, (?=[^,]*$)/, " or ")} (any case), but got "${raw.slice(0, 40)}"`);
  return known;
}
const JWKS_ALGORITHMS: JwtAlgorithm[] = ["RS256", "ES256", "PS256", "EdDSA"];

/**
 * Turns the environment into a typed Config, once, at start-up. Every refusal names the variable,
 * what was expected and what was found, except for secrets, whose values are never echoed.
 */
export function loadConfig(env: Env = process.env): Config {
  const production = nodeEnv(env) === "production";
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

  const maxConnections = integer(env, "HTTP_MAX_CONNECTIONS", 1_024, 1, 1_000_000);

  const trustedDocumentsPath = read(env, "TRUSTED_DOCUMENTS");
  let trustedDocuments: TrustedDocuments | undefined;
  if (trustedDocumentsPath !== undefined) {
    try {
      trustedDocuments = TrustedDocuments.load(trustedDocumentsPath);
    } catch (error) {
      if (error instanceof TrustedDocumentsError) throw new ConfigError(error.message);
      throw error;
    }
  }

  const routerSecretAdmitsTrustedClients = flag(env, "ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS");
  if (routerSecretAdmitsTrustedClients) {
    const missing = [routerSecret === undefined ? "ROUTER_SECRET" : undefined, trustedDocuments === undefined ? "TRUSTED_DOCUMENTS" : undefined].filter(Boolean).join(" and ");
    if (missing !== "") {
      throw new ConfigError(
        `ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS=true lets direct clients run trusted documents past ROUTER_SECRET, so it needs both ROUTER_SECRET and TRUSTED_DOCUMENTS, but ${missing} ${missing.includes(" and ") ? "are" : "is"} not set`,
      );
    }
    checkDocumentsForDirectClients(trustedDocuments as TrustedDocuments);
  }

  // Read once: the records' retention on Redis and PostgreSQL, and the session history's.
  const retentionMs = integer(env, "SESSION_RETENTION_DAYS", 7, 0, 3650) * 24 * 3600 * 1000;

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
      retentionMs,
    },
    postgres: {
      schema: postgresSchema(env),
      poolSize: integer(env, "POSTGRES_POOL_SIZE", 10, 2, 1000),
      statementTimeoutMs: integer(env, "POSTGRES_STATEMENT_TIMEOUT_MS", 5_000, 100, 600_000),
      retentionMs,
    },
    // As set: the history's own floor (at least a day) is applied where the history is kept.
    sessionHistory: { retentionMs },
    callerMutationsPerMinute: integer(env, "CALLER_MUTATIONS_PER_MINUTE", 60, 0, 1_000_000_000),
    corsOrigins,
    magicLinkRedirectOrigins,
    logLevel,
    log: {
      errorLinesPerSecond: integer(env, "LOG_ERROR_LINES_PER_SECOND", 20, 0, 100_000),
      droppedSummaryMs: integer(env, "LOG_DROPPED_SUMMARY_MS", 10_000, 1_000, 3_600_000),
    },
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 120_000),
    http: {
      requestTimeoutMs: integer(env, "HTTP_REQUEST_TIMEOUT_MS", 10_000, 500, 300_000),
      keepAliveTimeoutMs: integer(env, "HTTP_KEEP_ALIVE_TIMEOUT_MS", 5_000, 1_000, 300_000),
      maxConnections,
      // A quarter of the whole by default: one address leaves three quarters to everyone else.
      maxConnectionsPerAddress: integer(env, "HTTP_MAX_CONNECTIONS_PER_ADDRESS", Math.max(1, Math.floor(maxConnections / 4)), 1, maxConnections),
    },
    maxEntityRepresentations: integer(env, "MAX_ENTITY_REPRESENTATIONS", 500, 1, 100_000),
    maxEntityCost: integer(env, "MAX_ENTITY_COST", 1000, 1, 1_000_000),
    revocation: {
      // A short lease renewed often (every 500 ms) and a poll as often: a job whose replica dies is
      // taken over within about 2.5 s, a small part of what pacing costs (200 revokes ≈ 44 s at 5 rps).
      leaseMs: integer(env, "REVOCATION_LEASE_MS", 2_000, 1_000, 600_000),
      pollMs: integer(env, "REVOCATION_POLL_MS", 500, 100, 600_000),
    },
    limits: {
      maxAliases: integer(env, "GRAPHQL_MAX_ALIASES", LIMITS.maxAliases, 0, 1_000),
      maxDepth: integer(env, "GRAPHQL_MAX_DEPTH", LIMITS.maxDepth, 1, 100),
      maxCost: integer(env, "GRAPHQL_MAX_COST", LIMITS.maxCost, 1, 1_000_000),
      maxTokens: integer(env, "GRAPHQL_MAX_TOKENS", LIMITS.maxTokens, 50, 1_000_000),
      maxDirectives: integer(env, "GRAPHQL_MAX_DIRECTIVES", LIMITS.maxDirectives, 0, 1_000),
      maxBodyBytes: integer(env, "HTTP_MAX_BODY_BYTES", LIMITS.maxBodyBytes, 1024, 64 * 1024 * 1024),
    },
    ...(trustedDocuments === undefined ? {} : { trustedDocuments }),
    tracing: readTracingSettings(env),
    apolloFederatedTracing: readFederatedTracing(env),
    ...(routerSecret === undefined ? {} : { routerSecret }),
    routerSecretAdmitsTrustedClients,
  };
}

/**
 * With ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS, the manifest is what a direct client may run past the
 * router secret: every document must parse, and none may select a field only the router may ask
 * for (`_entities`, `_service`), or a client would reach them through a trusted document. Messages
 * name the entry by position and id, never its text.
 */
function checkDocumentsForDirectClients(trusted: TrustedDocuments): void {
  trusted.documents().forEach(({ id, text }, index) => {
    const entry = `TRUSTED_DOCUMENTS: entry ${index + 1} (${id})`;
    let document: DocumentNode;
    try {
      document = parse(text);
    } catch (error) {
      const at = error instanceof GraphQLError && error.locations?.[0] !== undefined ? ` at line ${error.locations[0].line}, column ${error.locations[0].column}` : "";
      throw new ConfigError(`${entry} does not parse as GraphQL${at}; with ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS=true every document must, so regenerate the manifest`);
    }
    const routerOnly = routerOnlyFieldsSelected(document);
    if (routerOnly.length > 0) {
      throw new ConfigError(
        `${entry} selects ${routerOnly.join(" and ")}, which only the router (ROUTER_SECRET) may ask for; with ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS=true a direct client could run it, so remove it from the manifest`,
      );
    }
  });
}
