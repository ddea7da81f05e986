import { describe, expect, it } from "vitest";
import { AuthError } from "../../src/auth/errors.js";
import { DeelError, type DeelErrorKind } from "../../src/deel/errors.js";
import { classifyFailure } from "../../src/graphql/failures.js";
import { LedgerError, SupersededSessionError } from "../../src/sessions/errors.js";

describe("classifyFailure", () => {
  it.each<[DeelErrorKind, string]>([
    ["bad_request", "BAD_USER_INPUT"],
    ["credentials", "UPSTREAM_CREDENTIALS"],
    ["not_found", "NOT_FOUND"],
    ["rate_limited", "RATE_LIMITED"],
    ["unavailable", "UPSTREAM_UNAVAILABLE"],
    ["bad_response", "UPSTREAM_UNAVAILABLE"],
  ])("gives a Deel %s failure the code %s in the gateway's own words, with Deel's request id", (kind, code) => {
    const failure = classifyFailure(new DeelError(kind, "upstream said <html>secret body</html>", { deelRequestId: "req-7", status: 500 }));
    expect(failure?.code).toBe(code);
    expect(failure?.deelRequestId).toBe("req-7");
    expect(failure?.message).not.toContain("secret body");
  });

  it("keeps the message of input the gateway refused before calling Deel, so it names the field at fault", () => {
    expect(classifyFailure(new DeelError("invalid_input", "Idempotency key must be 1 to 64 characters"))).toEqual({
      code: "BAD_USER_INPUT",
      message: "Idempotency key must be 1 to 64 characters",
    });
    expect(classifyFailure(new DeelError("invalid_input", "profileId must be a UUID"))?.message).toBe("profileId must be a UUID");
  });

  it("rounds a retry hint up to whole seconds, at least 1, and says it in the message", () => {
    expect(classifyFailure(new DeelError("rate_limited", "x", { retryAfterSeconds: 2.2 }))).toMatchObject({ retryAfterSeconds: 3, message: expect.stringContaining("3 s") });
    expect(classifyFailure(new DeelError("rate_limited", "x", { retryAfterSeconds: 0 }))?.retryAfterSeconds).toBe(1);
    expect(classifyFailure(new DeelError("rate_limited", "x"))?.retryAfterSeconds).toBe(1);
  });

  it("passes on a Deel Retry-After of at most an hour, however long Deel asked for", () => {
    expect(classifyFailure(new DeelError("rate_limited", "x", { retryAfterSeconds: 3600 }))?.retryAfterSeconds).toBe(3600);
    const days = classifyFailure(new DeelError("rate_limited", "x", { retryAfterSeconds: 7 * 24 * 3600 }));
    expect(days).toMatchObject({ retryAfterSeconds: 3600, message: expect.stringContaining("3600 s") });
    expect(classifyFailure(new DeelError("rate_limited", "x", { retryAfterSeconds: Infinity }))?.retryAfterSeconds).toBe(3600);
  });

  it("answers every ledger failure as UPSTREAM_UNAVAILABLE with words that name the part", () => {
    for (const kind of ["unavailable", "busy", "fenced"] as const) {
      const failure = classifyFailure(new LedgerError(kind, "redis://:password@host refused"));
      expect(failure?.code).toBe("UPSTREAM_UNAVAILABLE");
      expect(failure?.message).not.toContain("password");
    }
  });

  it("answers a refused caller as UNAUTHENTICATED and a superseded key as BAD_USER_INPUT", () => {
    expect(classifyFailure(new AuthError("Token expired"))).toEqual({ code: "UNAUTHENTICATED", message: "Token expired" });
    expect(classifyFailure(new SupersededSessionError())?.code).toBe("BAD_USER_INPUT");
  });

  it("knows nothing of an unexpected error, which the GraphQL layer then masks", () => {
    expect(classifyFailure(new Error("boom"))).toBeUndefined();
    expect(classifyFailure("a string")).toBeUndefined();
  });
});
