/**
 * The Deel REST client against a real sandbox on loopback: success parsing, status → kind mapping,
 * deadlines, redirects, idempotency keys end to end and token hygiene. The pure parts and the
 * MockAgent edge cases are in test/unit/deel-client.test.ts. Malformed profile ids never reach the
 * client (it takes a ProfileId): the edge refuses them (test/unit/edge-input.test.ts).
 */
import { deelFailure, serialize } from "../support/deel-errors.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DeelClient, type DeelClientOptions } from "../../src/deel/client.js";
import type { DeelError, DeelErrorKind } from "../../src/deel/errors.js";
import { deriveIdempotencyKey } from "../../src/deel/idempotency.js";
import { SEEDED_PROFILE_IDS, startDeelSandbox, type DeelSandbox, type SandboxFault } from "../../src/deel/sandbox/server.js";
import { aProfileId, anIdempotencyKey } from "../support/profiles.js";
import type { ProfileId } from "../../src/base/profile-id.js";

const [P1] = SEEDED_PROFILE_IDS.map(aProfileId) as [ProfileId, ...ProfileId[]];
const UNKNOWN_PROFILE = aProfileId("11111111-2222-4333-8444-555555555555");

/** Deel's error answers, and the kind each must become. */
const STATUS_CASES: Array<[string, SandboxFault, DeelErrorKind]> = [
  ["400", { kind: "status", status: 400 }, "bad_request"],
  ["401", { kind: "status", status: 401 }, "credentials"],
  ["403", { kind: "status", status: 403 }, "credentials"],
  ["404", { kind: "status", status: 404 }, "not_found"],
  ["409", { kind: "status", status: 409 }, "bad_response"],
  ["418", { kind: "status", status: 418 }, "bad_response"],
  ["429", { kind: "rate_limit" }, "rate_limited"],
  ["500", { kind: "status", status: 500 }, "unavailable"],
  ["503", { kind: "status", status: 503 }, "unavailable"],
  ["502 HTML", { kind: "non_json" }, "unavailable"],
];

const FUTURE = new Date(Date.now() + 3600_000).toISOString();
/** 2xx answers to a mint that are not a usable token. */
const BAD_CREATE_CASES: Array<[string, SandboxFault]> = [
  ["HTML with 201", { kind: "non_json", status: 201 }],
  ["HTML with 200", { kind: "non_json", status: 200 }],
  ["truncated JSON", { kind: "raw", status: 201, body: '{"data":{"token":"abc","expires_at":"20' }],
  ["201 without token", { kind: "raw", status: 201, body: JSON.stringify({ data: { expires_at: FUTURE } }) }],
  ["201 with an empty token", { kind: "raw", status: 201, body: JSON.stringify({ data: { token: " ", expires_at: FUTURE } }) }],
  ["201 with a non-string token", { kind: "raw", status: 201, body: JSON.stringify({ data: { token: 42, expires_at: FUTURE } }) }],
  ["201 without expires_at", { kind: "raw", status: 201, body: JSON.stringify({ data: { token: "abc" } }) }],
  ["201 with a bad expires_at", { kind: "raw", status: 201, body: JSON.stringify({ data: { token: "abc", expires_at: "tomorrow" } }) }],
  ["201 with an impossible date", { kind: "raw", status: 201, body: JSON.stringify({ data: { token: "abc", expires_at: "2025-13-45T99:99:99Z" } }) }],
  ["201 with an empty body", { kind: "raw", status: 201, body: "" }],
  ["200 instead of 201", { kind: "raw", status: 200, body: JSON.stringify({ data: { token: "abc", expires_at: FUTURE } }) }],
  ["202", { kind: "raw", status: 202, body: JSON.stringify({ data: { token: "abc", expires_at: FUTURE } }) }],
  ["204", { kind: "raw", status: 204, body: "" }],
  ["a body over 64 kB", { kind: "raw", status: 201, body: JSON.stringify({ data: { token: "abc", expires_at: FUTURE, pad: "x".repeat(70_000) } }) }],
];

let sandbox: DeelSandbox;
let client: DeelClient;
const extraClients: DeelClient[] = [];

function makeClient(overrides: Partial<DeelClientOptions> = {}): DeelClient {
  const made = new DeelClient({ baseUrl: sandbox.url, token: sandbox.orgToken, timeoutMs: 5_000, ...overrides });
  extraClients.push(made);
  return made;
}

/** Awaits a call that must fail with a DeelError, and checks that the error holds no sandbox token. */
async function failure(promise: Promise<unknown>): Promise<DeelError> {
  const error = await deelFailure(promise);
  expectNoToken(error);
  return error;
}

function expectNoToken(error: DeelError): void {
  const text = serialize(error);
  expect(text).not.toContain(sandbox.orgToken);
  expect(text).not.toContain(sandbox.readOnlyToken);
}

async function expectKind(promise: Promise<unknown>, kind: DeelErrorKind): Promise<DeelError> {
  const error = await failure(promise);
  expect({ kind: error.kind, message: error.message }).toMatchObject({ kind });
  return error;
}


async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  sandbox = await startDeelSandbox({ rateLimitRps: 0 });
  client = new DeelClient({ baseUrl: sandbox.url, token: sandbox.orgToken, timeoutMs: 5_000 });
});

afterEach(() => {
  sandbox.reset();
  sandbox.setLatency(0);
  sandbox.setRateLimit(0);
});

afterAll(async () => {
  await client.close();
  await Promise.all(extraClients.map((c) => c.close()));
  await sandbox.close();
});

describe("createSession", () => {
  it("mints: token, expiresAt, replayed=false; sends the exact path and headers", async () => {
    const minted = await client.createSession(P1, "key-1", { requestId: "gw-req-1" });
    expect(minted.token).toBe(sandbox.state(P1)?.token);
    expect(minted.expiresAt).toBeInstanceOf(Date);
    expect(minted.expiresAt.getTime()).toBe(sandbox.state(P1)?.expiresAt.getTime());
    expect(minted.replayed).toBe(false);
    expect(sandbox.requests).toEqual([
      { method: "POST", path: "/rest/v2/workers/session", idempotencyKey: "key-1", requestId: "gw-req-1", status: 201, at: expect.any(Number) },
    ]);
  });

  it("sends the org token as a bearer, JSON content type and user-agent", async () => {
    const seen: Record<string, string | string[] | undefined>[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        expect(JSON.parse(body)).toEqual({ data: { profile_id: P1 } });
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ data: { token: "t", expires_at: "2030-01-01T00:00:00.000Z" } }));
      });
    });
    const port = await listen(server);
    try {
      const local = makeClient({ baseUrl: `http://127.0.0.1:${port}/rest/v2`, token: "org-token-x", userAgent: "wsg-test" });
      await local.createSession(P1, "k");
      expect(seen[0]).toMatchObject({
        authorization: "Bearer org-token-x",
        accept: "application/json",
        "content-type": "application/json",
        "user-agent": "wsg-test",
        "idempotency-key": "k",
      });
      expect(seen[0]?.["x-request-id"]).toBeUndefined();
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  it("respects a trailing slash and the base path prefix", async () => {
    const local = makeClient({ baseUrl: `${sandbox.url}/` });
    await local.createSession(P1, "k");
    await local.revokeSession(P1);
    expect(sandbox.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "POST /rest/v2/workers/session",
      `DELETE /rest/v2/workers/${P1}/session`,
    ]);
  });

  it("reports a replay: same token, replayed=true, deelRequestId from x-original-request-id", async () => {
    const first = await client.createSession(P1, "replay-key");
    const second = await client.createSession(P1, "replay-key");
    expect(second.token).toBe(first.token);
    expect(second.replayed).toBe(true);
    expect(second.deelRequestId).toMatch(/^[0-9a-f]{32}$/);
    expect(sandbox.count({ method: "POST", status: 201 })).toBe(2);
    const third = await client.createSession(P1, "another-key");
    expect(third.token).not.toBe(first.token);
    expect(third.replayed).toBe(false);
  });

  it("refuses bad idempotency keys before any request", async () => {
    await expectKind(client.createSession(P1, ""), "invalid_input");
    await expectKind(client.createSession(P1, "k".repeat(65)), "invalid_input");
    await expectKind(client.createSession(P1, "a\r\nx-evil: 1"), "invalid_input");
    expect(sandbox.requests).toEqual([]);
    await client.createSession(P1, "k".repeat(64));
    expect(sandbox.requests[0]?.idempotencyKey).toBe("k".repeat(64));
  });
});

describe("revokeSession", () => {
  it("revokes: 204 → {}; the exact path", async () => {
    await client.createSession(P1, "k");
    await expect(client.revokeSession(P1, { requestId: "gw-2" })).resolves.toEqual({});
    expect(sandbox.state(P1)?.revoked).toBe(true);
    expect(sandbox.requests[1]).toMatchObject({ method: "DELETE", path: `/rest/v2/workers/${P1}/session`, requestId: "gw-2", status: 204 });
    expect(sandbox.requests[1]?.idempotencyKey).toBeUndefined();
  });

  it("accepts 200 with an empty or {} body, nothing else", async () => {
    sandbox.injectFault({ kind: "raw", status: 200, body: "" }, { times: 1 });
    await expect(client.revokeSession(P1)).resolves.toEqual({});
    sandbox.injectFault({ kind: "raw", status: 200, body: " {} " }, { times: 1 });
    await expect(client.revokeSession(P1)).resolves.toEqual({});
    sandbox.injectFault({ kind: "raw", status: 200, body: '{"data":{"ok":true}}' }, { times: 1 });
    await expectKind(client.revokeSession(P1), "bad_response");
    sandbox.injectFault({ kind: "raw", status: 201, body: "{}" }, { times: 1 });
    await expectKind(client.revokeSession(P1), "bad_response");
    sandbox.injectFault({ kind: "non_json", status: 200 }, { times: 1 });
    await expectKind(client.revokeSession(P1), "bad_response");
  });
});

describe("error mapping", () => {
  for (const [label, fault, kind] of STATUS_CASES) {
    it(`maps ${label} to ${kind} on both operations, with status and deelRequestId`, async () => {
      sandbox.injectFault(fault, { times: 2 });
      for (const op of [() => client.createSession(P1, "k"), () => client.revokeSession(P1)]) {
        const error = await expectKind(op(), kind);
        expect(error.status).toBe(fault.kind === "rate_limit" ? 429 : fault.kind === "non_json" ? 502 : (fault as { status: number }).status);
        if (fault.kind === "non_json") expect(error.deelRequestId).toBeUndefined();
        else expect(error.deelRequestId).toMatch(/^[0-9a-f]{32}$/);
        expect(error.message).toMatch(/^(Deel refused the organization token: )?Deel answered \d{3} on (POST \/workers\/session|DELETE \/workers\/\{profile_id\}\/session)$/);
      }
    });
  }

  it("maps real 401 (unknown token), 403 (read-only token) and 404 (unknown profile) answers", async () => {
    await expectKind(makeClient({ token: "not-the-org-token" }).createSession(P1, "k"), "credentials");
    const forbidden = await expectKind(makeClient({ token: sandbox.readOnlyToken }).revokeSession(P1), "credentials");
    expect(forbidden.status).toBe(403);
    const notFound = await expectKind(client.createSession(UNKNOWN_PROFILE, "k"), "not_found");
    expect(notFound.deelRequestId).toMatch(/^[0-9a-f]{32}$/);
    await expectKind(client.revokeSession(UNKNOWN_PROFILE), "not_found");
  });

  it("maps Deel's own rate limit (no headers) to rate_limited without retryAfterSeconds", async () => {
    sandbox.setRateLimit(1);
    await client.createSession(P1, "k1");
    const error = await expectKind(client.createSession(P1, "k2"), "rate_limited");
    expect(error.retryAfterSeconds).toBeUndefined();
  });

  it("parses Retry-After: delta-seconds and HTTP-date", async () => {
    sandbox.injectFault({ kind: "rate_limit", retryAfterSeconds: 7 }, { times: 1 });
    expect((await expectKind(client.createSession(P1, "k"), "rate_limited")).retryAfterSeconds).toBe(7);
    const date = new Date(Date.now() + 60_000).toUTCString();
    sandbox.injectFault({ kind: "raw", status: 429, body: "", headers: { "retry-after": date } }, { times: 1 });
    const dated = await expectKind(client.createSession(P1, "k"), "rate_limited");
    expect(dated.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(dated.retryAfterSeconds).toBeLessThanOrEqual(61);
    sandbox.injectFault({ kind: "raw", status: 429, body: "", headers: { "retry-after": "soon" } }, { times: 1 });
    expect((await expectKind(client.createSession(P1, "k"), "rate_limited")).retryAfterSeconds).toBeUndefined();
  });

  it("pulls deelRequestId only from Deel's envelope, and survives other bodies", async () => {
    const bodies: Array<[string, string | undefined]> = [
      [JSON.stringify({ request: { api_req_id: "req-abc_123" }, errors: [] }), "req-abc_123"],
      [JSON.stringify({ request: { api_req_id: 12345 } }), "12345"],
      [JSON.stringify({ request: { api_req_id: "<script>alert(1)</script>" } }), undefined],
      [JSON.stringify({ error: { code: "not_found", message: "secret upstream detail" } }), undefined],
      [JSON.stringify({ error: "secret upstream detail" }), undefined],
      ["", undefined],
      ["<html>secret upstream detail</html>", undefined],
      ['{"request":{"api_req_id":"trunc', undefined],
      ["null", undefined],
    ];
    for (const [body, id] of bodies) {
      sandbox.injectFault({ kind: "raw", status: 404, body }, { times: 1 });
      const error = await expectKind(client.createSession(P1, "k"), "not_found");
      expect(error.deelRequestId).toBe(id);
      expect(error.message).toBe("Deel answered 404 on POST /workers/session");
      expect(serialize(error)).not.toContain("secret upstream detail");
    }
  });

  it("does not follow redirects: 3xx is bad_response and the target sees nothing", async () => {
    let targetHits = 0;
    const target = createServer((_req, res) => {
      targetHits += 1;
      res.writeHead(201, { "content-type": "application/json" });
      res.end(JSON.stringify({ data: { token: "stolen", expires_at: "2030-01-01T00:00:00Z" } }));
    });
    const targetPort = await listen(target);
    const redirector = createServer((req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${targetPort}${req.url}` });
      res.end();
    });
    const redirectorPort = await listen(redirector);
    try {
      const local = makeClient({ baseUrl: `http://127.0.0.1:${redirectorPort}/rest/v2` });
      const error = await expectKind(local.createSession(P1, "k"), "bad_response");
      expect(error.status).toBe(307);
      await expectKind(local.revokeSession(P1), "bad_response");
      expect(targetHits).toBe(0);
    } finally {
      for (const server of [target, redirector]) {
        server.close();
        server.closeAllConnections();
      }
    }
  });
});

describe("bad responses on create", () => {
  for (const [label, fault] of BAD_CREATE_CASES) {
    it(`${label} → bad_response`, async () => {
      sandbox.injectFault(fault, { times: 1 });
      const error = await expectKind(client.createSession(P1, "k"), "bad_response");
      expect(error.message).not.toContain("abc");
    });
  }

  it("accepts an expires_at with an offset", async () => {
    sandbox.injectFault({ kind: "raw", status: 201, body: JSON.stringify({ data: { token: "abc", expires_at: "2030-05-17T13:31:27+02:00" } }) }, { times: 1 });
    const minted = await client.createSession(P1, "k");
    expect(minted.expiresAt.toISOString()).toBe("2030-05-17T11:31:27.000Z");
  });
});

describe("transport failures", () => {
  it("rejects unavailable when the whole-call deadline fires on a hung request", async () => {
    sandbox.injectFault({ kind: "hang" });
    const local = makeClient({ timeoutMs: 300 });
    const error = await expectKind(local.createSession(P1, "k"), "unavailable");
    // The message names what cut the request off: the 300 ms bound, not a transport error.
    expect(error.message).toBe("Deel did not answer within 300ms on POST /workers/session");
    await expectKind(local.revokeSession(P1), "unavailable");
    expect(sandbox.requests.map((r) => r.status)).toEqual([0, 0]);
  });

  it("honours the caller's abort signal", async () => {
    sandbox.injectFault({ kind: "hang" });
    const controller = new AbortController();
    const pending = client.createSession(P1, "k", { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const error = await expectKind(pending, "unavailable");
    expect(error.message).toMatch(/aborted by the caller/);
    await expectKind(client.revokeSession(P1, { signal: AbortSignal.abort() }), "unavailable");
    expect(sandbox.requests).toHaveLength(1);
  });

  it("maps a reset connection to unavailable", async () => {
    sandbox.injectFault({ kind: "reset" }, { times: 2 });
    await expectKind(client.createSession(P1, "k"), "unavailable");
    await expectKind(client.revokeSession(P1), "unavailable");
    await expect(client.createSession(P1, "k")).resolves.toMatchObject({ replayed: false });
  });

  it("maps a refused connection to unavailable", async () => {
    const server = createServer();
    const port = await listen(server);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await expectKind(makeClient({ baseUrl: `http://127.0.0.1:${port}/rest/v2` }).createSession(P1, "k"), "unavailable");
    expect(error.message).toMatch(/^Could not reach Deel on POST \/workers\/session/);
  });
});

describe("idempotency keys", () => {
  it("derived keys work end to end: the same caller key replays, another caller does not share it", async () => {
    const first = await client.createSession(P1, deriveIdempotencyKey("alice", P1, anIdempotencyKey("retry-1")));
    const again = await client.createSession(P1, deriveIdempotencyKey("alice", P1, anIdempotencyKey("retry-1")));
    const bob = await client.createSession(P1, deriveIdempotencyKey("bob", P1, anIdempotencyKey("retry-1")));
    expect(again).toMatchObject({ token: first.token, replayed: true });
    expect(bob.replayed).toBe(false);
    expect(bob.token).not.toBe(first.token);
  });
});


describe("token hygiene", () => {
  it("never puts the org token in an error message or property", async () => {
    // Its own errors, of every kind, so that it holds whatever else runs and in whatever order.
    const errors: DeelError[] = [];
    const collect = async (promise: Promise<unknown>) => {
      errors.push(await deelFailure(promise));
    };
    for (const [, fault] of STATUS_CASES) {
      sandbox.injectFault(fault, { times: 2 });
      await collect(client.createSession(P1, "k"));
      await collect(client.revokeSession(P1));
    }
    for (const [, fault] of BAD_CREATE_CASES) {
      sandbox.injectFault(fault, { times: 1 });
      await collect(client.createSession(P1, "k"));
    }
    await collect(client.createSession(P1, "k".repeat(65)));
    await collect(makeClient({ token: "not-the-org-token" }).createSession(P1, "k"));
    await collect(makeClient({ token: sandbox.readOnlyToken }).revokeSession(P1));
    await collect(client.createSession(UNKNOWN_PROFILE, "k"));
    sandbox.injectFault({ kind: "reset" }, { times: 2 });
    await collect(client.createSession(P1, "k"));
    await collect(client.revokeSession(P1));
    sandbox.injectFault({ kind: "hang" }, { times: 1 });
    await collect(makeClient({ timeoutMs: 200 }).createSession(P1, "k"));
    await collect(client.revokeSession(P1, { signal: AbortSignal.abort() }));

    expect(errors.length).toBeGreaterThan(40);
    const kinds = new Set(errors.map((e) => e.kind));
    expect([...kinds].sort()).toEqual(["bad_request", "bad_response", "credentials", "invalid_input", "not_found", "rate_limited", "unavailable"]);
    for (const error of errors) expectNoToken(error);
  });
});
