import { describe, expect, it } from "vitest";
import type { BackgroundClock } from "../../src/base/clock.js";
import { LOG_BOUNDS } from "../../src/http/log-bounds.js";
import { createLogger } from "../../src/http/logger.js";
import { aManualClock } from "../support/clock.js";
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

  it("bounds every line, whatever a caller put in its fields, message or error", () => {
    const logs = new LogCapture();
    const log = createLogger("trace", logs);
    const huge = "x".repeat(100_000);
    const error = new Error(`bad type "${huge}"`, { cause: new Error(huge) });
    log.error({ err: error, paths: Array.from({ length: 1000 }, () => [huge]), nested: { a: { b: { c: { d: { e: { f: { g: huge } } } } } } } }, huge);
    log.error(error);
    log.warn({ [huge]: huge, list: [error, error] });
    expect(logs.lines).toHaveLength(3);
    for (const line of logs.lines) expect(Buffer.byteLength(line)).toBeLessThan(LOG_BOUNDS.total + 3_000);
    const first = JSON.parse(logs.lines[0] as string) as { err: { message: string; cause: unknown }; paths: unknown[]; msg: string };
    expect(first.err.message).toMatch(/^bad type "x+…\[\d+ more characters\]$/);
    expect(first.paths).toHaveLength(LOG_BOUNDS.arrayItems + 1);
    expect(first.paths.at(-1)).toBe(`[${1000 - LOG_BOUNDS.arrayItems} more items]`);
    expect(first.msg.length).toBeLessThan(LOG_BOUNDS.string + 40);
  });

  it("keeps an ordinary line as it is", () => {
    const logs = new LogCapture();
    createLogger("trace", logs).info({ audit: { action: "create", sub: "svc-1", profileId: "p-1", outcome: "OK", deelRequestId: null } }, "worker session create: OK");
    expect(JSON.parse(logs.lines[0] as string)).toMatchObject({
      audit: { action: "create", sub: "svc-1", profileId: "p-1", outcome: "OK", deelRequestId: null },
      msg: "worker session create: OK",
    });
  });

  it("admits LOG_ERROR_LINES_PER_SECOND warn and error lines a second, never drops audit or fatal lines, and summarizes the drops", async () => {
    const manual = aManualClock(0);
    const clock: BackgroundClock = { ...manual, sleepInBackground: (ms, signal) => manual.sleep(ms, signal) };
    const logs = new LogCapture();
    const log = createLogger("trace", logs, { budget: { errorLinesPerSecond: 3, droppedSummaryMs: 5_000 }, clock });
    const request = log.child({ requestId: "r1" });
    for (let i = 0; i < 5; i += 1) request.error(`error ${i}`);
    for (let i = 0; i < 5; i += 1) log.warn(`warn ${i}`);
    for (let i = 0; i < 5; i += 1) log.info({ audit: { n: i } }, "audit");
    log.fatal("fatal");
    const messages = () => logs.lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages()).toEqual(["error 0", "error 1", "error 2", "audit", "audit", "audit", "audit", "audit", "fatal"]);

    manual.advance(1_000);
    request.error("error 5");
    expect(messages().at(-1)).toBe("error 5");
    expect(manual.pending()).toEqual([4_000]);

    manual.advance(4_000);
    await Promise.resolve();
    await Promise.resolve();
    const summary = JSON.parse(logs.lines.at(-1) as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ level: "warn", droppedLines: 7, sinceMs: 5_000 });
    expect(summary.msg).toMatch(/^log lines dropped: 7 /);
    expect(manual.pending()).toEqual([]);
  });
});
