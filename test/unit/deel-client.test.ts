/**
 * The Deel REST client without a network: a caller's dispatcher (undici's MockAgent) and its error
 * causes, ids, idempotency keys, Retry-After and request-id parsing, construction options. The
 * client against a real sandbox is in test/integration/deel-client.test.ts.
 */
import { describe, expect, it } from "vitest";
import { MockAgent } from "undici";
import { deelFailure, serialize } from "../support/deel-errors.js";
import { DeelClient, MAX_RESPONSE_BYTES, parseRetryAfter, extractDeelRequestId } from "../../src/deel/client.js";
import { deriveIdempotencyKey } from "../../src/deel/idempotency.js";
import { aManualClock } from "../support/clock.js";
import { aProfileId, anIdempotencyKey } from "../support/profiles.js";

const P1 = aProfileId("6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50");
const P2 = aProfileId("a2b4c6d8-e0f2-4416-9a3c-5e7f9b1d3f57");


describe("dispatcher", () => {
  it("uses a dispatcher passed in and leaves it open on close()", async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock
      .get("https://deel.example")
      .intercept({ path: "/rest/v2/workers/session", method: "POST" })
      .reply(201, { data: { token: "from-mock", expires_at: "2030-01-01T00:00:00.000Z" } });
    const local = new DeelClient({ baseUrl: "https://deel.example/rest/v2", token: "mock-org-token-123", timeoutMs: 1_000, dispatcher: mock });
    await expect(local.createSession(P1, "k")).resolves.toMatchObject({ token: "from-mock" });
    // An interceptor that matches on a header the call lacks: MockAgent's "not matched" error then
    // prints the request headers, token included (no server can produce that). The cause must not.
    mock
      .get("https://deel.example")
      .intercept({ path: `/rest/v2/workers/${P1}/session`, method: "DELETE", headers: { "x-never-sent": "1" } })
      .reply(204, "");
    const error = await deelFailure(local.revokeSession(P1));
    expect(error.kind).toBe("unavailable");
    expect(serialize(error)).toContain("Bearer [redacted]");
    expect(serialize(error)).not.toContain("mock-org-token-123");
    await local.close();
    await local.close();
    // The mock still works: close() left the caller's dispatcher alone.
    mock
      .get("https://deel.example")
      .intercept({ path: `/rest/v2/workers/${P1}/session`, method: "DELETE" })
      .reply(204, "");
    const other = new DeelClient({ baseUrl: "https://deel.example/rest/v2", token: "mock-org-token-123", timeoutMs: 1_000, dispatcher: mock });
    await expect(other.revokeSession(P1)).resolves.toEqual({});
    await mock.close();
  });

  it("reads a response body up to MAX_RESPONSE_BYTES, and answers bad_response past it", async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    const local = new DeelClient({ baseUrl: "https://deel.example/rest/v2", token: "mock-org-token-123", timeoutMs: 1_000, dispatcher: mock });
    const body = (pad: number) => JSON.stringify({ data: { token: "abc", expires_at: "2030-01-01T00:00:00.000Z", pad: "x".repeat(pad) } });
    const fits = body(MAX_RESPONSE_BYTES - body(0).length);
    expect(fits.length).toBe(MAX_RESPONSE_BYTES);
    const pool = mock.get("https://deel.example");
    pool.intercept({ path: "/rest/v2/workers/session", method: "POST" }).reply(201, fits);
    pool.intercept({ path: "/rest/v2/workers/session", method: "POST" }).reply(201, body(MAX_RESPONSE_BYTES));
    await expect(local.createSession(P1, "k")).resolves.toMatchObject({ token: "abc" });
    const error = await deelFailure(local.createSession(P1, "k"));
    expect({ kind: error.kind, status: error.status, message: error.message }).toEqual({
      kind: "bad_response",
      status: 201,
      message: `Deel answered an unexpected 201 with a body over ${MAX_RESPONSE_BYTES} bytes on POST /workers/session`,
    });
    await mock.close();
  });
});

describe("idempotency keys", () => {
  const key = anIdempotencyKey;
  it("derives a deterministic, namespaced key of at most 64 characters from a caller key", () => {
    const derived = deriveIdempotencyKey("user-1", P1, key("abc"));
    expect(derived).toMatch(/^wsg1-[A-Za-z0-9_-]{43}$/);
    expect(derived.length).toBeLessThanOrEqual(64);
    expect(deriveIdempotencyKey("user-1", P1, key("abc"))).toBe(derived);
    // One profile, however the caller spelt it: the edge made both the same ProfileId.
    expect(deriveIdempotencyKey("user-1", aProfileId(P1.toUpperCase()), key("abc"))).toBe(derived);
    expect(deriveIdempotencyKey("user-2", P1, key("abc"))).not.toBe(derived);
    expect(deriveIdempotencyKey("user-1", P2, key("abc"))).not.toBe(derived);
    expect(deriveIdempotencyKey("user-1", P1, key("abd"))).not.toBe(derived);
    // no ambiguity from concatenation
    expect(deriveIdempotencyKey("a", P1, key("bc"))).not.toBe(deriveIdempotencyKey("ab", P1, key("c")));
    expect(deriveIdempotencyKey("u", P1, key("k".repeat(64))).length).toBeLessThanOrEqual(64);
    expect(deriveIdempotencyKey("u", P1, key("ключ ✓")).length).toBeLessThanOrEqual(64);
  });

  it("is random without a caller key", () => {
    const a = deriveIdempotencyKey("user-1", P1, undefined);
    const b = deriveIdempotencyKey("user-1", P1, undefined);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("helpers", () => {
  it("parseRetryAfter", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("", now)).toBeUndefined();
    expect(parseRetryAfter("7", now)).toBe(7);
    expect(parseRetryAfter(" 7 ", now)).toBe(7);
    expect(parseRetryAfter("0", now)).toBe(1);
    expect(parseRetryAfter("1.2", now)).toBe(2);
    expect(parseRetryAfter("-3", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("Tue, 01 Jan 2030 00:00:30 GMT", now)).toBe(30);
    expect(parseRetryAfter("Tue, 01 Jan 2030 00:00:30 GMT", now + 500)).toBe(30); // 29.5 s, rounded up
    expect(parseRetryAfter("Mon, 31 Dec 2029 23:00:00 GMT", now)).toBe(1);
    expect(parseRetryAfter("Tue, 99 Foo 2030 GMT", now)).toBeUndefined();
  });

  it("extractDeelRequestId", () => {
    expect(extractDeelRequestId({ request: { api_req_id: "abc" } })).toBe("abc");
    expect(extractDeelRequestId({ request: { api_req_id: "x".repeat(129) } })).toBeUndefined();
    expect(extractDeelRequestId({ request: "abc" })).toBeUndefined();
    expect(extractDeelRequestId(["abc"])).toBeUndefined();
    expect(extractDeelRequestId(undefined)).toBeUndefined();
  });

  it("refuses bad construction options", () => {
    expect(() => new DeelClient({ baseUrl: "not a url", token: "t", timeoutMs: 1 })).toThrow(TypeError);
    expect(() => new DeelClient({ baseUrl: "ftp://x/rest", token: "t", timeoutMs: 1 })).toThrow(TypeError);
    expect(() => new DeelClient({ baseUrl: "https://u:p@x/rest", token: "t", timeoutMs: 1 })).toThrow(TypeError);
    expect(() => new DeelClient({ baseUrl: "https://x/rest", token: "bad token\n", timeoutMs: 1 })).toThrow(TypeError);
    expect(() => new DeelClient({ baseUrl: "https://x/rest", token: "t", timeoutMs: 0 })).toThrow(TypeError);
  });
});

describe("mayHaveMinted", () => {
  const transportError = (code: string) => Object.assign(new Error(`transport failure ${code}`), { code });

  it("is false when the request never left (connect-phase codes, a deadline already passed, a caller abort before), true once it may have", async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    const local = new DeelClient({ baseUrl: "https://deel.example/rest/v2", token: "mock-org-token-123", timeoutMs: 1_000, dispatcher: mock });
    const pool = mock.get("https://deel.example");
    const cases: Array<[string, boolean]> = [
      ["ECONNREFUSED", false],
      ["ENOTFOUND", false],
      ["UND_ERR_CONNECT_TIMEOUT", false],
      ["ERR_TLS_CERT_ALTNAME_INVALID", false],
      ["ECONNRESET", true],
      ["UND_ERR_SOCKET", true],
    ];
    for (const [code, expected] of cases) {
      pool.intercept({ path: "/rest/v2/workers/session", method: "POST" }).replyWithError(transportError(code));
      const error = await deelFailure(local.createSession(P1, "k"));
      expect({ code, kind: error.kind, mayHaveMinted: error.mayHaveMinted }).toEqual({ code, kind: "unavailable", mayHaveMinted: expected });
    }
    expect((await deelFailure(local.createSession(P1, "k", { deadline: Date.now() - 1 }))).mayHaveMinted).toBe(false);
    expect((await deelFailure(local.createSession(P1, "k", { signal: AbortSignal.abort() }))).mayHaveMinted).toBe(false);
    // Refused by the client before anything is sent (a header value Deel would refuse).
    expect((await deelFailure(local.createSession(P1, "k".repeat(65)))).mayHaveMinted).toBe(false);
    await mock.close();
  });

  it("is false for Deel's refusals (400, 401, 403, 404, 429, any 4xx) and true for 5xx, a garbled 2xx and a redirect", async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    const local = new DeelClient({ baseUrl: "https://deel.example/rest/v2", token: "mock-org-token-123", timeoutMs: 1_000, dispatcher: mock });
    const pool = mock.get("https://deel.example");
    const cases: Array<[number, string, boolean]> = [
      [400, "{}", false],
      [401, "{}", false],
      [403, "{}", false],
      [404, "{}", false],
      [409, "{}", false],
      [429, "{}", false],
      [500, "{}", true],
      [502, "", true],
      [503, "{}", true],
      [201, "{\"data\":", true],
      [200, "{}", true],
      [302, "", true],
    ];
    for (const [status, body, expected] of cases) {
      pool.intercept({ path: "/rest/v2/workers/session", method: "POST" }).reply(status, body);
      const error = await deelFailure(local.createSession(P1, "k"));
      expect({ status, mayHaveMinted: error.mayHaveMinted }).toEqual({ status, mayHaveMinted: expected });
    }
    await mock.close();
  });
});

describe("the deadline", () => {
  const T = Date.UTC(2030, 0, 1);
  /** A client on a clock the test moves, whose Deel (a MockAgent) answers only after a minute of real time. */
  function overSlowDeel() {
    const clock = aManualClock(T);
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock
      .get("https://deel.example")
      .intercept({ path: "/rest/v2/workers/session", method: "POST" })
      .reply(201, { data: { token: "too-late", expires_at: "2030-01-02T00:00:00.000Z" } })
      .delay(60_000);
    const client = new DeelClient({ baseUrl: "https://deel.example/rest/v2", token: "mock-org-token-123", timeoutMs: 1_000, dispatcher: mock, clock });
    return { clock, mock, client };
  }

  it("aborts at the deadline it is handed, on its clock, not at its own timeoutMs", async () => {
    const { clock, mock, client } = overSlowDeel();
    const pending = client.createSession(P1, "k", { deadline: T + 5_000 });
    // The only wait is the abort, at the caller's deadline.
    expect(clock.pending()).toEqual([5_000]);
    clock.advance(4_999);
    expect(clock.pending()).toEqual([1]);
    clock.advance(1);
    const error = await deelFailure(pending);
    expect({ kind: error.kind, message: error.message, mayHaveMinted: error.mayHaveMinted }).toEqual({
      kind: "unavailable",
      message: "Deel did not answer within 5000ms on POST /workers/session",
      mayHaveMinted: true,
    });
    await mock.close();
  });

  it("bounds a call that brings no deadline by its own timeoutMs", async () => {
    const { clock, mock, client } = overSlowDeel();
    const pending = client.createSession(P1, "k");
    expect(clock.pending()).toEqual([1_000]);
    clock.advance(1_000);
    expect((await deelFailure(pending)).message).toBe("Deel did not answer within 1000ms on POST /workers/session");
    await mock.close();
  });

  it("clears its abort once the answer is in", async () => {
    const clock = aManualClock(T);
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock
      .get("https://deel.example")
      .intercept({ path: "/rest/v2/workers/session", method: "POST" })
      .reply(429, {}, { headers: { "retry-after": "Tue, 01 Jan 2030 00:00:30 GMT" } });
    const client = new DeelClient({ baseUrl: "https://deel.example/rest/v2", token: "mock-org-token-123", timeoutMs: 1_000, dispatcher: mock, clock });
    const error = await deelFailure(client.createSession(P1, "k", { deadline: T + 5_000 }));
    // An HTTP-date Retry-After is read against the client's clock: 30 s after its "now".
    expect({ kind: error.kind, retryAfterSeconds: error.retryAfterSeconds }).toEqual({ kind: "rate_limited", retryAfterSeconds: 30 });
    expect(clock.pending()).toEqual([]);
    await mock.close();
  });
});
