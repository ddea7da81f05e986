import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const operator = { DEEL_API_TOKEN: "deel-org-token-0123456789abcdef", AUTH_JWT_SECRET: "a-secret-that-is-at-least-32-bytes-long!!" };

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a ConfigError");
}

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
