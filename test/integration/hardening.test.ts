import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LIMITS } from "../../src/graphql/limits.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { Ledger } from "../../src/sessions/ledger.js";
import { CreateWorkerSessionDocument, WorkerSessionDocument } from "../generated/operations.js";
import { aCallerToken, anAdminToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type TestGateway } from "../support/gateway.js";

let prod: TestGateway;
let admin: string;
let P1: string;

beforeAll(async () => {
  prod = await startTestGateway({ env: { NODE_ENV: "production" } });
  admin = await anAdminToken();
  [P1] = prod.sandbox.profiles as [string];
});
afterAll(() => prod.close());

async function post(url: string, body: string, headers: Record<string, string>) {
  const response = await request(url, { method: "POST", headers, body });
  return { status: response.statusCode, text: await response.body.text(), headers: response.headers };
}

describe("NODE_ENV=production", () => {
  it("refuses introspection", async () => {
    const response = await gql(prod.url, "{ __schema { types { name } } }", undefined, { token: admin });
    expect(codes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
  });

  it("hides 'Did you mean' suggestions", async () => {
    const response = await gql(prod.url, `{ workerSesion(profileId: "${P1}") { status } }`, undefined, { token: admin });
    expect(codes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(response.raw).not.toMatch(/did you mean/i);
    expect(response.raw).not.toContain("workerSession");
  });

  it("serves no landing page", async () => {
    const response = await request(prod.url, { headers: { accept: "text/html" } });
    const text = await response.body.text();
    expect(text).not.toMatch(/sandbox|<html/i);
  });

  it("refuses bad input with BAD_USER_INPUT and no stack trace", async () => {
    const response = await gql(prod.url, `{ workerSession(profileId: "nope") { status } }`, undefined, { token: admin });
    expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(response.raw).not.toContain("stacktrace");
  });

  it("masks an internal error as INTERNAL_SERVER_ERROR with a generic message and no stack trace, and logs the original", async () => {
    const secret = "ledger disk /var/lib/wsg/ledger.db is corrupt";
    /** A ledger whose reads fail with a plain Error: no known error type, so nothing may reach the caller. */
    class BrokenReadStore extends Ledger {
      constructor() {
        super(createStorage({ kind: "memory" }), { retentionMs: null });
      }
      override async get(): Promise<never> {
        throw new Error(secret);
      }
      override async getMany(): Promise<never> {
        throw new Error(secret);
      }
      override async getStates(): Promise<never> {
        throw new Error(secret);
      }
    }
    const broken = await startTestGateway({ env: { NODE_ENV: "production" }, overrides: { store: new BrokenReadStore() } });
    try {
      const response = await gql(broken.url, WorkerSessionDocument, { profileId: P1 }, { token: admin, headers: { "x-request-id": "req-internal-1" } });
      expect(response.status).toBe(200);
      expect(response.data).toEqual({ workerSession: null });
      expect(response.errors).toEqual([
        { message: "Internal server error", path: ["workerSession"], locations: expect.any(Array), extensions: { code: "INTERNAL_SERVER_ERROR" } },
      ]);
      expect(response.raw).not.toContain("stacktrace");
      expect(response.raw).not.toContain(secret);
      expect(response.raw).not.toMatch(/\bat .+:\d+:\d+/);
      // The operator still learns what happened, in a line carrying the request id.
      const logged = broken.logs.lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.requestId === "req-internal-1" && line.err !== undefined);
      expect(logged).toEqual([
        expect.objectContaining({ level: "error", count: 1, paths: [["workerSession"]], err: expect.objectContaining({ message: secret }) }),
      ]);
    } finally {
      await broken.close();
    }
  });
});

describe("request limits, refused at N+1", () => {
  const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: workerSession(profileId: "${P1}") { status }`).join(" ")} }`;

  it("refuses an alias flood of 100 workerSession fields, and more than the alias limit", async () => {
    // 100 aliased fields are also over the token limit, so the parser refuses them first.
    const flood = await gql(prod.url, aliases(100), undefined, { token: admin });
    expect(flood.status).toBe(400);
    expect(codes(flood)).toEqual(["GRAPHQL_PARSE_FAILED"]);
    expect(codes(await gql(prod.url, aliases(LIMITS.maxAliases + 1), undefined, { token: admin }))).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(codes(await gql(prod.url, aliases(LIMITS.maxAliases), undefined, { token: admin }))).toEqual([]);
  });

  it("refuses more directives than the limit", async () => {
    const directives = (n: number) => `{ ${Array.from({ length: n }, () => "__typename @include(if: true)").join(" ")} }`;
    expect(codes(await gql(prod.url, directives(LIMITS.maxDirectives + 1), undefined, { token: admin }))).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(codes(await gql(prod.url, directives(LIMITS.maxDirectives), undefined, { token: admin }))).toEqual([]);
  });

  it("refuses more tokens than the limit", async () => {
    // 12 tokens of frame around a list literal of n tokens (representations are cheap in cost).
    const tokens = (n: number) => `{ _entities(representations: [${Array(n - 12).fill("1").join(" ")}]) { __typename } }`;
    const limitCodes = ["GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"];
    const over = await gql(prod.url, tokens(LIMITS.maxTokens + 1), undefined, { token: admin });
    // A parse failure, as any GraphQL server answers an over-long document: 400, with where it
    // stopped, naming the limit and its setting as every limit's refusal does.
    expect(over.status).toBe(400);
    expect(over.errors).toEqual([
      {
        message: `Syntax Error: Over the token limit: the document has more than ${LIMITS.maxTokens} tokens; GRAPHQL_MAX_TOKENS allows ${LIMITS.maxTokens}`,
        locations: [expect.objectContaining({ line: 1 })],
        extensions: { code: "GRAPHQL_PARSE_FAILED" },
      },
    ]);
    const atLimit = await gql(prod.url, tokens(LIMITS.maxTokens), undefined, { token: admin });
    expect(codes(atLimit).filter((code) => limitCodes.includes(code as string))).toEqual([]);
  });

  it("refuses a query deeper than the limit", async () => {
    // nest(d) selects d + 1 levels of fields; the root level is depth 0.
    const nest = (depth: number): string => (depth === 0 ? "x" : `f { ${nest(depth - 1)} }`);
    const over = await gql(prod.url, `{ ${nest(LIMITS.maxDepth)} }`, undefined, { token: admin });
    const atLimit = await gql(prod.url, `{ ${nest(LIMITS.maxDepth - 1)} }`, undefined, { token: admin });
    // Both are invalid against the schema; only the deeper one also trips the depth limit.
    expect(over.errors!.length).toBe(atLimit.errors!.length + 1);
  });

  it("refuses a query over the cost limit", async () => {
    const fields = (n: number) => `{ ${Array.from({ length: n }, () => "__typename").join(" ")} }`;
    const over = await gql(prod.url, fields(LIMITS.maxCost + 1), undefined, { token: admin });
    expect(codes(over)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(codes(await gql(prod.url, fields(LIMITS.maxCost), undefined, { token: admin }))).toEqual([]);
  });

  it("refuses two mutation fields in one operation before Deel is called", async () => {
    const before = prod.sandbox.requests.length;
    const response = await gql(
      prod.url,
      `mutation { a: createWorkerSession(input: { profileId: "${P1}" }) { token } b: revokeWorkerSession(input: { profileId: "${P1}" }) { profileId } }`,
      undefined,
      { token: admin },
    );
    expect(codes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(response.raw).toContain("at most one mutation field");
    expect(prod.sandbox.requests.length).toBe(before);
  });

  it("refuses batched HTTP requests", async () => {
    const query = JSON.stringify({ query: "{ __typename }" });
    const response = await post(prod.url, `[${query},${query}]`, { "content-type": "application/json", authorization: `Bearer ${admin}` });
    expect(response.status).toBe(400);
  });

  it("answers 413 to a body over 100 kB", async () => {
    const body = JSON.stringify({ query: "{ __typename }", variables: { pad: "x".repeat(101 * 1024) } });
    const response = await post(prod.url, body, { "content-type": "application/json" });
    expect(response.status).toBe(413);
    expect(response.text).not.toContain("at ");
  });
});

describe("CSRF prevention", () => {
  it("refuses a text/plain POST", async () => {
    const response = await post(prod.url, JSON.stringify({ query: "{ __typename }" }), { "content-type": "text/plain" });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.text).not.toContain('"__typename"');
  });

  it("refuses a mutation over GET", async () => {
    const before = prod.sandbox.requests.length;
    const query = encodeURIComponent(`mutation { createWorkerSession(input: { profileId: "${P1}" }) { token } }`);
    const response = await request(`${prod.url}?query=${query}`, {
      headers: { authorization: `Bearer ${admin}`, "apollo-require-preflight": "true" },
    });
    const text = await response.body.text();
    expect(response.statusCode).toBe(405);
    expect(text).not.toContain("token");
    expect(prod.sandbox.requests.length).toBe(before);
  });

  it("refuses a GET query without a preflight-forcing header", async () => {
    const response = await request(`${prod.url}?query=${encodeURIComponent("{ __typename }")}`);
    await response.body.dump();
    expect(response.statusCode).toBe(400);
  });
});

describe("CORS", () => {
  it("admits only the origins in CORS_ORIGINS", async () => {
    const gw = await startTestGateway({ env: { NODE_ENV: "production", CORS_ORIGINS: "https://app.example.com" } });
    try {
      const preflight = (origin: string) =>
        request(gw.url, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" } });
      const allowed = await preflight("https://app.example.com");
      await allowed.body.dump();
      expect(allowed.headers["access-control-allow-origin"]).toBe("https://app.example.com");
      const refused = await preflight("https://evil.example.com");
      await refused.body.dump();
      expect(refused.headers["access-control-allow-origin"]).toBeUndefined();
      const sandbox = await preflight("https://studio.apollographql.com");
      await sandbox.body.dump();
      expect(sandbox.headers["access-control-allow-origin"]).toBeUndefined();
    } finally {
      await gw.close();
    }
  });
});

describe("request ids", () => {
  it("echoes a caller's x-request-id, sends it to Deel, and puts it in the log lines", async () => {
    const before = prod.sandbox.requests.length;
    const response = await gql(prod.url, CreateWorkerSessionDocument, { input: { profileId: P1 } }, { token: admin, headers: { "x-request-id": "req-abc-123" } });
    expect(response.headers["x-request-id"]).toBe("req-abc-123");
    expect(prod.sandbox.requests.slice(before).map((r) => r.requestId)).toEqual(["req-abc-123"]);
    const audit = prod.logs.audits().find((a) => a.requestId === "req-abc-123");
    expect(audit).toMatchObject({ action: "create", sub: "admin-1", profileId: P1, outcome: "OK", deelRequestId: null });
  });

  it("generates one when the caller's is missing or malformed", async () => {
    const response = await gql(prod.url, WorkerSessionDocument, { profileId: P1 }, { token: admin, headers: { "x-request-id": "bad id\twith spaces" } });
    expect(response.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("audit lines", () => {
  it("writes one for a refused mutation, with who, which profile and the code", async () => {
    const readOnly = await aCallerToken({ sub: "reader-9", scopes: ["worker_sessions:read", "worker_sessions:all_profiles"] });
    await gql(prod.url, CreateWorkerSessionDocument, { input: { profileId: P1 } }, { token: readOnly, headers: { "x-request-id": "req-denied-1" } });
    const audits = prod.logs.audits().filter((a) => a.requestId === "req-denied-1");
    expect(audits).toEqual([{ action: "create", sub: "reader-9", profileId: P1, outcome: "FORBIDDEN", deelRequestId: null, requestId: "req-denied-1" }]);
  });

  it("carries Deel's request id when Deel refused", async () => {
    await gql(prod.url, CreateWorkerSessionDocument, { input: { profileId: "11111111-2222-4333-8444-555555555555" } }, { token: admin, headers: { "x-request-id": "req-404" } });
    const [audit] = prod.logs.audits().filter((a) => a.requestId === "req-404");
    expect(audit).toMatchObject({ outcome: "NOT_FOUND", deelRequestId: expect.stringMatching(/^[0-9a-f]+$/) });
  });
});

describe("operations endpoints", () => {
  it("answers /healthz and /readyz, and /readyz 503 when the store does not answer", async () => {
    const health = await request(`${prod.origin}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    const ready = await request(`${prod.origin}/readyz`);
    expect(ready.statusCode).toBe(200);
    await ready.body.dump();

    class DownStore extends Ledger {
      constructor() {
        super(createStorage({ kind: "memory" }), { retentionMs: null });
      }
      override async ping(): Promise<void> {
        throw new Error("store down");
      }
    }
    const down = await startTestGateway({ overrides: { store: new DownStore() } });
    try {
      const response = await request(`${down.origin}/readyz`);
      expect(response.statusCode).toBe(503);
      expect(await response.body.text()).not.toContain("store down");
      const alive = await request(`${down.origin}/healthz`);
      expect(alive.statusCode).toBe(200);
      await alive.body.dump();
    } finally {
      await down.close();
    }
  });

  it("labels operations by root field, so nobody mints label values by naming operations", async () => {
    for (let i = 0; i < 20; i += 1) {
      await gql(prod.url, `query Flood${i}Name { workerSession(profileId: "${P1}") { status } }`);
      await gql(prod.url, `query Broken${i} {`);
    }
    const text = await (await request(`${prod.origin}/metrics`)).body.text();
    expect(text).not.toMatch(/Flood\d+Name|Broken\d+/);
    expect(text).toMatch(/wsg_graphql_operations_total\{operation="invalid",outcome="GRAPHQL_PARSE_FAILED"\} \d+/);
  });

  it("exposes Prometheus metrics for operations, Deel calls, store reads and the process", async () => {
    await gql(prod.url, WorkerSessionDocument, { profileId: P1 }, { token: admin });
    await gql(prod.url, WorkerSessionDocument, { profileId: P1 });
    const response = await request(`${prod.origin}/metrics`);
    const text = await response.body.text();
    expect(response.headers["content-type"]).toMatch(/text\/plain/);
    expect(text).toMatch(/wsg_graphql_operations_total\{operation="workerSession",outcome="OK"\} \d+/);
    expect(text).toMatch(/wsg_graphql_operations_total\{operation="workerSession",outcome="UNAUTHENTICATED"\} \d+/);
    expect(text).toMatch(/wsg_graphql_operation_duration_seconds_bucket/);
    expect(text).toMatch(/wsg_store_reads_total\{op="get_many"\} \d+/);
    expect(text).toMatch(/wsg_deel_calls_total\{endpoint="POST \/workers\/session",status="201"\} \d+/);
    expect(text).toMatch(/wsg_deel_calls_total\{endpoint="POST \/workers\/session",status="404"\} \d+/);
    expect(text).toMatch(/wsg_deel_call_duration_seconds_bucket\{le="0.1",endpoint="POST \/workers\/session"\} \d+/);
    expect(text).toMatch(/wsg_deel_budget_queue_depth 0/);
    expect(text).toMatch(/wsg_deel_budget_wait_seconds_count \d+/);
    expect(text).toMatch(/wsg_deel_breaker_state 0/);
    expect(text).toMatch(/process_resident_memory_bytes \d+/);
    expect(text).toMatch(/nodejs_eventloop_lag_seconds/);
  });
});

describe("per-caller quota", () => {
  it("answers RATE_LIMITED with retryAfterSeconds past CALLER_MUTATIONS_PER_MINUTE, per sub", async () => {
    const gw = await startTestGateway({ env: { CALLER_MUTATIONS_PER_MINUTE: "3" } });
    try {
      const busy = await aCallerToken({ sub: "busy-caller" });
      for (let i = 0; i < 3; i++) {
        expect(codes(await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId: P1 } }, { token: busy }))).toEqual([]);
      }
      const before = gw.sandbox.requests.length;
      const over = await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId: P1 } }, { token: busy });
      expect(codes(over)).toEqual(["RATE_LIMITED"]);
      const seconds = over.errors?.[0]?.extensions?.retryAfterSeconds as number;
      // Three at once against 3 per rolling minute: the next fits once a third of the next minute has passed.
      expect(seconds).toBeGreaterThanOrEqual(70);
      expect(seconds).toBeLessThanOrEqual(80);
      expect(gw.sandbox.requests.length).toBe(before);
      const other = await aCallerToken({ sub: "calm-caller" });
      expect(codes(await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId: P1 } }, { token: other }))).toEqual([]);
      // Reads are not counted.
      expect(codes(await gql(gw.url, WorkerSessionDocument, { profileId: P1 }, { token: busy }))).toEqual([]);
    } finally {
      await gw.close();
    }
  });
});

describe("ROUTER_SECRET", () => {
  it("refuses every GraphQL request without the matching Router-Authorization header", async () => {
    const secret = "router-secret-0123456789abcdef";
    const gw = await startTestGateway({ env: { ROUTER_SECRET: secret } });
    try {
      expect((await gql(gw.url, WorkerSessionDocument, { profileId: P1 }, { token: admin })).status).toBe(401);
      const wrong = await gql(gw.url, WorkerSessionDocument, { profileId: P1 }, { token: admin, headers: { "router-authorization": `${secret}x` } });
      expect(wrong.status).toBe(401);
      expect(codes(wrong)).toEqual(["UNAUTHENTICATED"]);
      const right = await gql(gw.url, WorkerSessionDocument, { profileId: P1 }, { token: admin, headers: { "router-authorization": secret } });
      expect(right.status).toBe(200);
      expect(right.errors).toBeUndefined();
      const health = await request(`${gw.origin}/healthz`);
      expect(health.statusCode).toBe(200);
      await health.body.dump();
      expect(gw.logs.text).not.toContain(secret);
    } finally {
      await gw.close();
    }
  });
});
