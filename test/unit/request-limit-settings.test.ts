import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { LIMIT_NAMES, LIMITS, limitMessage } from "../../src/graphql/limits.js";

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

describe("request limit settings", () => {
  it("default to LIMITS, and each GRAPHQL_MAX_* / HTTP_MAX_BODY_BYTES sets its limit", () => {
    expect(loadConfig(operator).limits).toEqual(LIMITS);
    const set = loadConfig({
      ...operator,
      GRAPHQL_MAX_ALIASES: "0",
      GRAPHQL_MAX_DEPTH: "9",
      GRAPHQL_MAX_COST: "1000",
      GRAPHQL_MAX_TOKENS: "5000",
      GRAPHQL_MAX_DIRECTIVES: "2",
      HTTP_MAX_BODY_BYTES: "1048576",
    });
    expect(set.limits).toEqual({ maxAliases: 0, maxDepth: 9, maxCost: 1000, maxTokens: 5000, maxDirectives: 2, maxBodyBytes: 1048576 });
  });

  it("refuses a value out of range, naming the variable", () => {
    expect(refusal({ ...operator, GRAPHQL_MAX_DEPTH: "0" })).toBe("GRAPHQL_MAX_DEPTH must be a whole number from 1 to 100, but got 0");
    expect(refusal({ ...operator, GRAPHQL_MAX_TOKENS: "ten" })).toMatch(/^GRAPHQL_MAX_TOKENS must be a whole number/);
    expect(refusal({ ...operator, HTTP_MAX_BODY_BYTES: "100" })).toMatch(/^HTTP_MAX_BODY_BYTES must be a whole number from 1024/);
  });

  it("words a refusal with the limit, the count, the value and the setting", () => {
    expect(limitMessage(LIMIT_NAMES.aliases, 5, 6)).toBe("Over the alias limit: the operation has 6 aliases; GRAPHQL_MAX_ALIASES allows 5");
    expect(limitMessage(LIMIT_NAMES.tokens, 1000)).toBe("Over the token limit: the document has more than 1000 tokens; GRAPHQL_MAX_TOKENS allows 1000");
  });
});

describe("TRUSTED_DOCUMENTS", () => {
  const dir = mkdtempSync(join(tmpdir(), "wsg-trusted-config-"));
  const text = "{ __typename }";

  it("loads the manifest once into the config", () => {
    const path = join(dir, "ok.json");
    writeFileSync(path, JSON.stringify({ [`sha256:${createHash("sha256").update(text).digest("hex")}`]: text }));
    expect(loadConfig({ ...operator, TRUSTED_DOCUMENTS: path }).trustedDocuments?.size).toBe(1);
    expect(loadConfig(operator).trustedDocuments).toBeUndefined();
  });

  it("stops start-up on a manifest it cannot trust, naming the variable", () => {
    const path = join(dir, "bad.json");
    writeFileSync(path, JSON.stringify({ [`sha256:${"0".repeat(64)}`]: text }));
    expect(refusal({ ...operator, TRUSTED_DOCUMENTS: path })).toMatch(/^TRUSTED_DOCUMENTS \(.*bad\.json\): entry 1's id sha256:0{64} does not match its document/);
    expect(refusal({ ...operator, TRUSTED_DOCUMENTS: join(dir, "none.json") })).toMatch(/^TRUSTED_DOCUMENTS must name a readable file/);
  });
});
