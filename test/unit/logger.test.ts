import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/http/logger.js";
import { LedgerError } from "../../src/sessions/errors.js";
import { LogCapture } from "../support/logs.js";

const PASSWORD = "SuperSecretRedisPw123";

/** What ioredis throws when Redis refuses a password: the failed command rides along. */
function redisAuthError(): Error {
  return Object.assign(new Error("WRONGPASS invalid username-password pair"), {
    command: { name: "hello", args: ["3", "AUTH", "default", PASSWORD] },
  });
}

describe("the logger", () => {
  it("never writes the command an ioredis error carries (AUTH holds the password), also as a cause", () => {
    const logs = new LogCapture();
    const log = createLogger("trace", logs);
    log.error({ err: redisAuthError() }, "Redis is unreachable");
    log.warn({ err: new LedgerError("unavailable", "the ledger is unavailable", { cause: redisAuthError() }) }, "ledger failed");
    log.child({ requestId: "r1" }).error({ err: redisAuthError() }, "again, from a request logger");
    expect(logs.lines).toHaveLength(3);
    expect(logs.text).toContain("WRONGPASS");
    expect(logs.text).not.toContain(PASSWORD);
  });

  it("censors token fields and authorization headers", () => {
    const logs = new LogCapture();
    const log = createLogger("trace", logs);
    log.info({ token: "worker-token-1", session: { token: "worker-token-2" }, headers: { authorization: "Bearer caller-jwt", cookie: "sid=1" } }, "x");
    expect(logs.text).not.toMatch(/worker-token-1|worker-token-2|caller-jwt|sid=1/);
    expect(logs.text).toContain("[redacted]");
  });
});
