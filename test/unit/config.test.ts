import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { DAY_MS, historyRetentionMs } from "../../src/sessions/history.js";

const ORG_TOKEN = "deel-org-token-0123456789abcdef";
const SECRET = "a-secret-that-is-at-least-32-bytes-long!!";
const operator = { DEEL_API_TOKEN: ORG_TOKEN, AUTH_JWT_SECRET: SECRET };

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("configuration", () => {
  it("has the documented defaults", () => {
    const config = loadConfig(operator);
    expect(config).toMatchObject({
      production: false,
      localMode: false,
      port: 4000,
      deel: { apiUrl: "https://api.letsdeel.com/rest/v2", timeoutMs: 8000, rateLimitRps: 5 },
      auth: { profileClaim: "deel_profile_ids", jwksAlgorithms: ["RS256", "ES256"] },
      store: { kind: "sqlite", path: "./data/worker-sessions.db" },
      callerMutationsPerMinute: 60,
      corsOrigins: [],
      logLevel: "info",
      log: { errorLinesPerSecond: 20, droppedSummaryMs: 10_000 },
      http: { maxConnections: 1024, maxConnectionsPerAddress: 256 },
    });
    expect(loadConfig({ ...operator, HTTP_MAX_CONNECTIONS: "2" }).http.maxConnectionsPerAddress).toBe(1);
    expect(loadConfig({ ...operator, HTTP_MAX_CONNECTIONS: "100", HTTP_MAX_CONNECTIONS_PER_ADDRESS: "100" }).http.maxConnectionsPerAddress).toBe(100);
  });

  it("is in local mode with no Deel token outside production, and never in production", () => {
    expect(loadConfig({}).localMode).toBe(true);
    expect(loadConfig(operator).localMode).toBe(false);
    expect(refusal({ NODE_ENV: "production", AUTH_JWT_SECRET: SECRET })).toMatch(/DEEL_API_TOKEN \(or DEEL_API_TOKEN_FILE\) is required/);
  });

  it("reads the organization token from DEEL_API_TOKEN_FILE, and never echoes it", () => {
    const dir = mkdtempSync(join(tmpdir(), "wsg-config-"));
    const file = join(dir, "token");
    writeFileSync(file, `${ORG_TOKEN}\n`);
    expect(loadConfig({ DEEL_API_TOKEN_FILE: file, AUTH_JWT_SECRET: SECRET }).deel.token).toBe(ORG_TOKEN);
    expect(refusal({ DEEL_API_TOKEN_FILE: join(dir, "missing"), AUTH_JWT_SECRET: SECRET })).toMatch(/DEEL_API_TOKEN_FILE must name a readable file/);
    const bad = refusal({ DEEL_API_TOKEN: "has spaces in it and is long", AUTH_JWT_SECRET: SECRET });
    expect(bad).toMatch(/DEEL_API_TOKEN must be a single printable token/);
    expect(bad).not.toContain("has spaces");
  });

  it("requires AUTH_ISSUER and AUTH_AUDIENCE in production unless AUTH_ALLOW_ANY_ISSUER=1 says otherwise", () => {
    const prod = { ...operator, NODE_ENV: "production" };
    expect(refusal(prod)).toMatch(/^AUTH_ISSUER and AUTH_AUDIENCE are required when NODE_ENV=production/);
    expect(refusal({ ...prod, AUTH_ISSUER: "https://id.example.com" })).toMatch(/^AUTH_AUDIENCE is required/);
    expect(refusal({ ...prod, AUTH_AUDIENCE: "wsg" })).toMatch(/^AUTH_ISSUER is required/);
    expect(loadConfig({ ...prod, AUTH_ISSUER: "https://id.example.com", AUTH_AUDIENCE: "wsg" }).auth).toMatchObject({ issuer: "https://id.example.com", audience: "wsg" });
    expect(loadConfig({ ...prod, AUTH_ALLOW_ANY_ISSUER: "1" }).production).toBe(true);
    expect(refusal({ ...prod, AUTH_ALLOW_ANY_ISSUER: "yes" })).toMatch(/AUTH_ALLOW_ANY_ISSUER must be 1 or 0/);
    // Outside production the check stays out of a developer's way.
    expect(loadConfig(operator).auth.issuer).toBeUndefined();
  });

  it("never echoes the user:password of a URL it refuses, even one that does not parse", () => {
    for (const [name, value] of [
      ["DEEL_API_URL", "http://admin:hunter2@deel .example.com"],
      ["AUTH_JWKS_URL", "https://svc:pa/ss@keys example"],
    ] as const) {
      const message = refusal({ ...operator, [name]: value });
      expect(message).toMatch(new RegExp(`^${name} must be an http\\(s\\) URL`));
      expect(message).not.toContain("hunter2");
      expect(message).not.toContain("pa/ss");
      expect(message).toContain("[redacted]@");
    }
    expect(refusal({ ...operator, DEEL_API_URL: "admin:hunter2@host:notaport" })).not.toContain("hunter2");
    const cors = refusal({ ...operator, CORS_ORIGINS: "https://user:secret-pw@app.example.com" });
    expect(cors).toMatch(/^CORS_ORIGINS must list origins/);
    expect(cors).not.toContain("secret-pw");
  });

  it("never echoes the user:password-like part of a URL without an @", () => {
    for (const value of ["http://user:hunter2%40x", "http://user:hunter2", "https://svc:hunter2%40keys.example/jwks", "user:hunter2"]) {
      const message = refusal({ ...operator, DEEL_API_URL: value });
      expect(message).toMatch(/^DEEL_API_URL must/);
      expect(message).not.toContain("hunter2");
    }
    // A port is not a password: a refusal still shows where the value pointed.
    expect(refusal({ ...operator, DEEL_API_URL: "http://deel.example.com:99999/rest" })).toContain("deel.example.com:99999");
  });

  it("reads NODE_ENV whatever its case, and refuses a value it does not know", () => {
    const prod = { ...operator, AUTH_ISSUER: "https://idp.example.com/", AUTH_AUDIENCE: "wsg" };
    for (const value of ["production", "Production", "PRODUCTION", " production "]) {
      expect(loadConfig({ ...prod, NODE_ENV: value }).production).toBe(true);
    }
    expect(refusal({ ...operator, NODE_ENV: "Production" })).toMatch(/^AUTH_ISSUER and AUTH_AUDIENCE are required when NODE_ENV=production/);
    for (const value of ["development", "Development", "test"]) expect(loadConfig({ ...prod, NODE_ENV: value }).production).toBe(false);
    for (const value of ["prod", "staging", "production1"]) {
      expect(refusal({ ...prod, NODE_ENV: value })).toBe(`NODE_ENV must be production, development or test (any case), but got "${value}"`);
    }
  });

  it("requires a way to verify callers outside local mode", () => {
    expect(refusal({ DEEL_API_TOKEN: ORG_TOKEN })).toMatch(/AUTH_JWKS_URL or AUTH_JWT_SECRET is required/);
    expect(refusal({ DEEL_API_TOKEN: ORG_TOKEN, AUTH_JWT_SECRET: "short" })).toMatch(/AUTH_JWT_SECRET must be at least 32 bytes/);
    expect(refusal({ DEEL_API_TOKEN: ORG_TOKEN, AUTH_JWKS_URL: "ftp://keys" })).toMatch(/AUTH_JWKS_URL must be an http\(s\) URL/);
  });

  it("names the variable, the expectation and the value for every malformed setting", () => {
    expect(refusal({ ...operator, PORT: "http" })).toBe('PORT must be a whole number from 0 to 65535, but got "http"');
    expect(refusal({ ...operator, DEEL_TIMEOUT_MS: "-1" })).toMatch(/^DEEL_TIMEOUT_MS must be a whole number/);
    expect(refusal({ ...operator, DEEL_RATE_LIMIT_RPS: "five" })).toMatch(/^DEEL_RATE_LIMIT_RPS must be a whole number/);
    expect(refusal({ ...operator, LOG_LEVEL: "loud" })).toMatch(/^LOG_LEVEL must be one of .* but got "loud"/);
    expect(refusal({ ...operator, CORS_ORIGINS: "https://a.example.com/path" })).toMatch(/^CORS_ORIGINS must list origins/);
    expect(refusal({ ...operator, DEEL_API_URL: "not a url" })).toMatch(/^DEEL_API_URL must be an http\(s\) URL/);
    expect(refusal({ ...operator, DEEL_API_URL: "https://api.example.com/rest/v2?x=1" })).toMatch(/^DEEL_API_URL must be a base URL without a query/);
    expect(refusal({ ...operator, LOG_ERROR_LINES_PER_SECOND: "many" })).toMatch(/^LOG_ERROR_LINES_PER_SECOND must be a whole number from 0 to 100000/);
    expect(refusal({ ...operator, LOG_DROPPED_SUMMARY_MS: "10" })).toMatch(/^LOG_DROPPED_SUMMARY_MS must be a whole number from 1000 to 3600000, but got 10/);
    expect(refusal({ ...operator, HTTP_MAX_CONNECTIONS: "100", HTTP_MAX_CONNECTIONS_PER_ADDRESS: "101" })).toBe(
      "HTTP_MAX_CONNECTIONS_PER_ADDRESS must be a whole number from 1 to 100, but got 101",
    );
    const store = refusal({ ...operator, SESSION_STORE_URL: "mysql://user:hunter2@db" });
    expect(store).toMatch(/^SESSION_STORE_URL must be "memory:", "sqlite:<path>", "redis:\/\/…" or "postgres:\/\/…"/);
    expect(store).not.toContain("hunter2");
  });

  it("reads MAGIC_LINK_REDIRECT_ORIGINS as a list of https origins (http only for localhost), empty by default", () => {
    expect(loadConfig(operator).magicLinkRedirectOrigins).toEqual([]);
    expect(loadConfig({ ...operator, MAGIC_LINK_REDIRECT_ORIGINS: "https://app.example.com, http://localhost:3000" }).magicLinkRedirectOrigins).toEqual([
      "https://app.example.com",
      "http://localhost:3000",
    ]);
    expect(refusal({ ...operator, MAGIC_LINK_REDIRECT_ORIGINS: "https://app.example.com/done" })).toMatch(/^MAGIC_LINK_REDIRECT_ORIGINS must list origins/);
    expect(refusal({ ...operator, MAGIC_LINK_REDIRECT_ORIGINS: "http://app.example.com" })).toMatch(/^MAGIC_LINK_REDIRECT_ORIGINS must list https origins/);
    expect(refusal({ ...operator, MAGIC_LINK_REDIRECT_ORIGINS: "https://u:secret-pw@app.example.com" })).not.toContain("secret-pw");
  });

  it("parses the store URL forms", () => {
    expect(loadConfig({ ...operator, SESSION_STORE_URL: "memory:" }).store).toEqual({ kind: "memory" });
    expect(loadConfig({ ...operator, SESSION_STORE_URL: "sqlite:/tmp/x.db" }).store).toEqual({ kind: "sqlite", path: "/tmp/x.db" });
    expect(loadConfig({ ...operator, SESSION_STORE_URL: "rediss://h:6380/0" }).store).toMatchObject({ kind: "redis", url: "rediss://h:6380/0" });
    for (const url of ["postgres://gw:pw@db:5432/gateway?sslmode=verify-full", "postgresql://db/gateway"]) {
      expect(loadConfig({ ...operator, SESSION_STORE_URL: url }).store).toEqual({ kind: "postgres", url });
    }
  });
});

describe("PostgreSQL settings", () => {
  it("default to the public schema, 10 connections, a 5 s statement timeout and 7 days of retention", () => {
    expect(loadConfig(operator).postgres).toEqual({ schema: "public", poolSize: 10, statementTimeoutMs: 5_000, retentionMs: 7 * 24 * 3600 * 1000 });
  });

  it("read POSTGRES_SCHEMA, POSTGRES_POOL_SIZE, POSTGRES_STATEMENT_TIMEOUT_MS and SESSION_RETENTION_DAYS", () => {
    const config = loadConfig({
      ...operator,
      SESSION_STORE_URL: "postgres://db/gateway",
      POSTGRES_SCHEMA: "acme_prod",
      POSTGRES_POOL_SIZE: "25",
      POSTGRES_STATEMENT_TIMEOUT_MS: "2000",
      SESSION_RETENTION_DAYS: "30",
    });
    expect(config.postgres).toEqual({ schema: "acme_prod", poolSize: 25, statementTimeoutMs: 2000, retentionMs: 30 * 24 * 3600 * 1000 });
  });

  it("refuse a bad schema, pool size or timeout, and a malformed postgres URL without echoing it", () => {
    expect(refusal({ ...operator, POSTGRES_SCHEMA: "Acme-Prod" })).toMatch(/^POSTGRES_SCHEMA must be 1 to 63 characters from a-z 0-9 _.* but got "Acme-Prod"/);
    expect(refusal({ ...operator, POSTGRES_POOL_SIZE: "1" })).toMatch(/^POSTGRES_POOL_SIZE must be a whole number from 2 to 1000/);
    expect(refusal({ ...operator, POSTGRES_STATEMENT_TIMEOUT_MS: "0" })).toMatch(/^POSTGRES_STATEMENT_TIMEOUT_MS must be a whole number/);
    const hostless = refusal({ ...operator, SESSION_STORE_URL: "postgres://:hunter2@/gateway" });
    expect(hostless).toMatch(/^SESSION_STORE_URL is not a valid postgres URL/);
    expect(hostless).not.toContain("hunter2");
  });
});

describe("Redis settings", () => {
  it("default to the wsg: prefix and 7 days of retention", () => {
    expect(loadConfig(operator).redis).toEqual({ keyPrefix: "wsg:", retentionMs: 7 * 24 * 3600 * 1000 });
  });

  it("read REDIS_KEY_PREFIX and SESSION_RETENTION_DAYS", () => {
    const config = loadConfig({ ...operator, SESSION_STORE_URL: "redis://h:6379/2", REDIS_KEY_PREFIX: "acme-prod:", SESSION_RETENTION_DAYS: "30" });
    expect(config.store).toEqual({ kind: "redis", url: "redis://h:6379/2" });
    expect(config.redis).toEqual({ keyPrefix: "acme-prod:", retentionMs: 30 * 24 * 3600 * 1000 });
    expect(loadConfig({ ...operator, SESSION_RETENTION_DAYS: "0" }).redis.retentionMs).toBe(0);
  });

  it("read SESSION_RETENTION_DAYS once, as set, for the records and the history alike; the history's floor of a day is the history's own", () => {
    for (const days of [0, 1, 30]) {
      const config = loadConfig({ ...operator, SESSION_RETENTION_DAYS: String(days) });
      expect([config.redis.retentionMs, config.postgres.retentionMs, config.sessionHistory.retentionMs]).toEqual(Array(3).fill(days * DAY_MS));
      expect(historyRetentionMs(config.sessionHistory.retentionMs)).toBe(Math.max(1, days) * DAY_MS);
    }
  });

  it("refuse a bad prefix or retention, naming the variable and what is expected", () => {
    expect(refusal({ ...operator, REDIS_KEY_PREFIX: "has space" })).toMatch(/^REDIS_KEY_PREFIX must be 1 to 64 characters .* but got "has space"/);
    expect(refusal({ ...operator, REDIS_KEY_PREFIX: "x".repeat(65) })).toMatch(/^REDIS_KEY_PREFIX must be/);
    expect(refusal({ ...operator, SESSION_RETENTION_DAYS: "-1" })).toMatch(/^SESSION_RETENTION_DAYS must be a whole number from 0 to 3650/);
    expect(refusal({ ...operator, SESSION_RETENTION_DAYS: "7.5" })).toMatch(/^SESSION_RETENTION_DAYS must be a whole number/);
  });

  it("never echo a redis URL, which may hold a password", () => {
    const message = refusal({ ...operator, SESSION_STORE_URL: "redis://:hunter2-secret@exa mple:6379" });
    expect(message).toMatch(/^SESSION_STORE_URL/);
    expect(message).not.toContain("hunter2");
  });
});
