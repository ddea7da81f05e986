/**
 * The built-in Deel sandbox, over real HTTP on loopback: Deel's worker-session behaviour, faults,
 * control routes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Agent, request } from "undici";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { SEEDED_PROFILE_IDS, startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";

const UNKNOWN_PROFILE = "11111111-2222-4333-8444-555555555555";
const [P1, P2, P3] = SEEDED_PROFILE_IDS as [string, string, string, ...string[]];

let sandbox: DeelSandbox;
const agent = new Agent({ keepAliveTimeout: 1_000, connections: 32 });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

async function call(
  method: string,
  path: string,
  options: { token?: string | null; body?: string | object; headers?: Record<string, string>; signal?: AbortSignal; base?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? sandbox.orgToken : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    headers["content-type"] = "application/json";
  }
  const base = options.base ?? sandbox.url;
  const url = new URL(base);
  const res = await request(`${url.origin}${path.startsWith("/__sandbox") ? "" : url.pathname}${path}`, {
    method: method as "GET",
    headers,
    ...(body === undefined ? {} : { body }),
    ...(options.signal ? { signal: options.signal } : {}),
    dispatcher: agent,
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

const mint = (profileId: string, headers: Record<string, string> = {}, token?: string | null) =>
  call("POST", "/workers/session", { body: { data: { profile_id: profileId } }, headers, token });
const revoke = (profileId: string, token?: string | null) => call("DELETE", `/workers/${profileId}/session`, { token });
const me = (workerToken: string) => call("GET", "/people/me", { token: workerToken });

function tokenOf(answer: Answer): string {
  const token = (answer.json as { data: { token: string } }).data.token;
  expect(typeof token).toBe("string");
  return token;
}

function expectEnvelope(answer: Answer, status: number): string {
  expect(answer.status).toBe(status);
  const body = answer.json as { request: Record<string, unknown>; errors: Array<{ message: unknown; path: unknown }> };
  expect(body.request).toMatchObject({ status, method: expect.any(String), url: expect.any(String), docs: expect.any(String), source: expect.any(String), code: expect.any(String) });
  expect(body.request.api_req_id).toEqual(expect.stringMatching(/^[0-9a-f]{32}$/));
  expect(body.errors).toHaveLength(1);
  expect(typeof body.errors[0]?.message).toBe("string");
  expect(body.errors[0]).toHaveProperty("path");
  return body.request.api_req_id as string;
}

beforeAll(async () => {
  sandbox = await startDeelSandbox({ rateLimitRps: 0 });
});

afterEach(() => {
  sandbox.reset();
  sandbox.setLatency(0);
  sandbox.setRateLimit(0);
  sandbox.setTokenLifetime(24 * 60 * 60 * 1000);
});

afterAll(async () => {
  await sandbox.close();
  await agent.close();
});

describe("start-up", () => {
  it("listens on loopback with the default base path, random org token and seeded profiles", () => {
    expect(sandbox.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/rest\/v2$/);
    expect(sandbox.orgToken).toMatch(/^deel-sandbox-org-[0-9a-f]+$/);
    expect(sandbox.readOnlyToken).not.toBe(sandbox.orgToken);
    expect(sandbox.profiles).toEqual(SEEDED_PROFILE_IDS);
    expect(SEEDED_PROFILE_IDS).toHaveLength(5);
    for (const id of SEEDED_PROFILE_IDS) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("honours basePath, fixed tokens and profiles, and refuses non-UUID profiles", async () => {
    const custom = await startDeelSandbox({ basePath: "/api/", orgToken: "org-fixed", readOnlyToken: "ro-fixed", profiles: [UNKNOWN_PROFILE] });
    try {
      expect(custom.url.endsWith("/api")).toBe(true);
      const res = await request(`${custom.url}/workers/session`, {
        method: "POST",
        headers: { authorization: "Bearer org-fixed", "content-type": "application/json" },
        body: JSON.stringify({ data: { profile_id: UNKNOWN_PROFILE } }),
        dispatcher: agent,
      });
      await res.body.text();
      expect(res.statusCode).toBe(201);
      expect(custom.requests[0]?.path).toBe("/api/workers/session");
    } finally {
      await custom.close();
    }
    await expect(startDeelSandbox({ profiles: ["nope"] })).rejects.toThrow(/not a UUID/);
  });
});

describe("POST /workers/session", () => {
  it("answers 201 with a fresh opaque token and a 24 h expires_at", async () => {
    const before = Date.now();
    const res = await mint(P1, { "x-request-id": "req-1", "idempotency-key": "k-1" });
    expect(res.status).toBe(201);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.headers["x-original-request-id"]).toBeUndefined();
    const body = res.json as { data: { token: string; expires_at: string } };
    expect(Object.keys(body)).toEqual(["data"]);
    expect(body.data.token.length).toBeGreaterThanOrEqual(32);
    expect(body.data.token).not.toContain(sandbox.orgToken);
    const expiresAt = Date.parse(body.data.expires_at);
    expect(body.data.expires_at).toBe(new Date(expiresAt).toISOString());
    expect(expiresAt).toBeGreaterThanOrEqual(before + 24 * 3600_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);

    expect(sandbox.state(P1)).toEqual({ token: body.data.token, expiresAt: new Date(expiresAt), revoked: false });
    expect(sandbox.requests).toEqual([
      { method: "POST", path: "/rest/v2/workers/session", idempotencyKey: "k-1", requestId: "req-1", status: 201, at: expect.any(Number) },
    ]);
    const second = await mint(P2);
    expect(tokenOf(second)).not.toBe(body.data.token);
  });

  it("accepts the profile id in any case", async () => {
    const res = await mint(P1.toUpperCase());
    expect(res.status).toBe(201);
    expect(sandbox.state(P1)?.token).toBe(tokenOf(res));
  });

  it("answers 400 for malformed JSON, a missing data/profile_id and a non-UUID id", async () => {
    for (const body of ["{not json", "", "null", "[]", JSON.stringify({}), JSON.stringify({ data: {} }), JSON.stringify({ data: { profile_id: 42 } })]) {
      expectEnvelope(await call("POST", "/workers/session", { body }), 400);
    }
    const nonUuid = await mint("not-a-uuid");
    expectEnvelope(nonUuid, 400);
    expect((nonUuid.json as { errors: Array<{ path: string }> }).errors[0]?.path).toBe("data.profile_id");
    expect(sandbox.count({ status: 400 })).toBe(8);
    expect(sandbox.state(P1)).toBeUndefined();
  });

  it("answers 404 for a UUID that is not a known profile", async () => {
    expectEnvelope(await mint(UNKNOWN_PROFILE), 404);
  });

  it("answers 413 for a body over 64 kB", async () => {
    const big = JSON.stringify({ data: { profile_id: P1 }, padding: "x".repeat(70 * 1024) });
    const res = await call("POST", "/workers/session", { body: big });
    expectEnvelope(res, 413);
    expect(sandbox.state(P1)).toBeUndefined();
  });

  it("replaces the previous token: one token per worker", async () => {
    const first = tokenOf(await mint(P1));
    expect((await me(first)).status).toBe(200);
    const second = tokenOf(await mint(P1));
    expect(second).not.toBe(first);
    expectEnvelope(await me(first), 401);
    const ok = await me(second);
    expect(ok.status).toBe(200);
    expect((ok.json as { data: { id: string } }).data.id).toBe(P1);
  });
});

describe("DELETE /workers/{id}/session", () => {
  it("answers 204 with an empty body and the token stops working", async () => {
    const token = tokenOf(await mint(P1));
    const res = await revoke(P1);
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expect(sandbox.state(P1)).toMatchObject({ token, revoked: true });
    expectEnvelope(await me(token), 401);
    expect(sandbox.requests.at(-2)).toMatchObject({ method: "DELETE", path: `/rest/v2/workers/${P1}/session`, status: 204 });
  });

  it("answers 204 for a known profile without a live token, 404 for an unknown one, 400 for a non-UUID", async () => {
    expect((await revoke(P2)).status).toBe(204);
    expect(sandbox.state(P2)).toBeUndefined();
    expectEnvelope(await revoke(UNKNOWN_PROFILE), 404);
    expectEnvelope(await revoke("not-a-uuid"), 400);
    expectEnvelope(await call("DELETE", "/workers/%ZZ/session"), 400);
  });

  it("records the raw path a client sent, without normalizing it", async () => {
    expectEnvelope(await call("DELETE", `/workers/..%2f${P1}/session`), 400);
    expect(sandbox.requests[0]?.path).toBe(`/rest/v2/workers/..%2f${P1}/session`);
  });
});

describe("GET /people/me", () => {
  it("answers 401 for unknown tokens, the org token and no token", async () => {
    expectEnvelope(await me("nope"), 401);
    expectEnvelope(await me(sandbox.orgToken), 401);
    expectEnvelope(await call("GET", "/people/me", { token: null }), 401);
  });

  it("answers 401 once the token has expired", async () => {
    sandbox.setTokenLifetime(300);
    const before = Date.now();
    const res = await mint(P3);
    const expiresAt = Date.parse((res.json as { data: { expires_at: string } }).data.expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 300);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 300);
    await sleep(Math.max(0, expiresAt - Date.now()) + 50);
    expectEnvelope(await me(tokenOf(res)), 401);
  });

  it("is neither rate-limited nor subject to faults", async () => {
    const token = tokenOf(await mint(P1));
    sandbox.setRateLimit(1);
    sandbox.injectFault({ kind: "status", status: 500 });
    for (let i = 0; i < 3; i++) expect((await me(token)).status).toBe(200);
  });
});

describe("authentication and routing", () => {
  it("answers 401 without or with an unknown bearer and 403 for the read-only token, each with a fresh api_req_id", async () => {
    const ids = new Set<string>();
    ids.add(expectEnvelope(await mint(P1, {}, null), 401));
    ids.add(expectEnvelope(await mint(P1, {}, "wrong"), 401));
    ids.add(expectEnvelope(await call("POST", "/workers/session", { body: "{bad json", token: "wrong" }), 401));
    ids.add(expectEnvelope(await mint(P1, {}, sandbox.readOnlyToken), 403));
    ids.add(expectEnvelope(await revoke(P1, sandbox.readOnlyToken), 403));
    ids.add(expectEnvelope(await mint(P1, { authorization: `Basic ${sandbox.orgToken}` }, null), 401));
    expect(ids.size).toBe(6);
    expect(sandbox.state(P1)).toBeUndefined();
  });

  it("answers 404 for unknown paths (before auth) and 405 for a wrong method", async () => {
    expectEnvelope(await call("GET", "/workers", { token: null }), 404);
    expectEnvelope(await call("POST", "/workers/session/extra"), 404);
    const wrong = await call("GET", "/workers/session");
    expectEnvelope(wrong, 405);
    expect(wrong.headers.allow).toBe("POST");
    expect(sandbox.requests).toHaveLength(3);
  });
});

describe("idempotency", () => {
  it("replays a 2xx for the same key with x-original-request-id and the same token", async () => {
    const first = await mint(P1, { "idempotency-key": "same-key" });
    const second = await mint(P1, { "idempotency-key": "same-key" });
    expect(second.status).toBe(201);
    expect(second.text).toBe(first.text);
    expect(second.headers["x-original-request-id"]).toEqual(expect.stringMatching(/^[0-9a-f]{32}$/));
    expect(first.headers["x-original-request-id"]).toBeUndefined();
    expect(sandbox.state(P1)?.token).toBe(tokenOf(first));
    const third = await mint(P1, { "idempotency-key": "other-key" });
    expect(tokenOf(third)).not.toBe(tokenOf(first));
    expect(third.headers["x-original-request-id"]).toBeUndefined();
  });

  it("rejects keys over 64 characters with 400", async () => {
    expectEnvelope(await mint(P1, { "idempotency-key": "k".repeat(65) }), 400);
    expect((await mint(P1, { "idempotency-key": "k".repeat(64) })).status).toBe(201);
  });

  it("does not store failed attempts", async () => {
    sandbox.injectFault({ kind: "status", status: 500 }, { times: 1 });
    expectEnvelope(await mint(P1, { "idempotency-key": "retry-me" }), 500);
    const retry = await mint(P1, { "idempotency-key": "retry-me" });
    expect(retry.status).toBe(201);
    expect(retry.headers["x-original-request-id"]).toBeUndefined();
    expectEnvelope(await mint(UNKNOWN_PROFILE, { "idempotency-key": "nf" }), 404);
    expectEnvelope(await mint(UNKNOWN_PROFILE, { "idempotency-key": "nf" }), 404);
  });

  it("answers 429 with Retry-After: 1 to a retry while the first is in flight", async () => {
    sandbox.setLatency(1_000);
    const [a, b] = await Promise.all([mint(P1, { "idempotency-key": "flight" }), mint(P1, { "idempotency-key": "flight" })]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([201, 429]);
    const limited = a.status === 429 ? a : b;
    expectEnvelope(limited, 429);
    expect(limited.headers["retry-after"]).toBe("1");
    // once the first finished, a retry replays it
    sandbox.setLatency(0);
    const replay = await mint(P1, { "idempotency-key": "flight" });
    expect(replay.headers["x-original-request-id"]).toBeDefined();
  });
});

describe("rate limit", () => {
  it("answers 429 to the 6th request within a second, without rate-limit headers", async () => {
    sandbox.setRateLimit(5);
    const answers = await Promise.all(Array.from({ length: 6 }, () => mint(P1)));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 201, 201, 201, 429]);
    const limited = answers.find((a) => a.status === 429)!;
    expectEnvelope(limited, 429);
    const names = Object.keys(limited.headers).map((h) => h.toLowerCase());
    expect(names.filter((h) => h.includes("ratelimit") || h.includes("rate-limit") || h === "retry-after")).toEqual([]);
  });

  it("shares the budget between the org's tokens, and rejected requests do not count", async () => {
    sandbox.setRateLimit(5);
    for (let i = 0; i < 5; i++) expectEnvelope(await mint(P1, {}, sandbox.readOnlyToken), 403);
    const lastAccepted = sandbox.requests.at(-1)!.at;
    await sleep(200);
    for (let i = 0; i < 3; i++) expectEnvelope(await mint(P1), 429);
    // Unauthenticated calls are refused before the limiter and do not spend the budget either.
    expectEnvelope(await mint(P1, {}, "wrong"), 401);
    await sleep(Math.max(0, lastAccepted + 1_050 - Date.now()));
    expect((await mint(P1)).status).toBe(201);
  });
});

describe("faults", () => {
  it("status: answers the status with the envelope, `times` uses, then behaves again", async () => {
    sandbox.injectFault({ kind: "status", status: 503 }, { times: 2 });
    expectEnvelope(await mint(P1), 503);
    expectEnvelope(await revoke(P1), 503);
    expect((await mint(P1)).status).toBe(201);
  });

  it("applies only to the given method, and only after authentication", async () => {
    sandbox.injectFault({ kind: "status", status: 500 }, { method: "DELETE", times: 1 });
    expectEnvelope(await revoke(P1, "wrong"), 401);
    expect((await mint(P1)).status).toBe(201);
    expectEnvelope(await revoke(P1), 500);
    expect((await revoke(P1)).status).toBe(204);
  });

  it("rate_limit: 429 with Retry-After only when given", async () => {
    sandbox.injectFault({ kind: "rate_limit", retryAfterSeconds: 7 }, { times: 1 });
    const withHeader = await mint(P1);
    expectEnvelope(withHeader, 429);
    expect(withHeader.headers["retry-after"]).toBe("7");
    sandbox.injectFault({ kind: "rate_limit" }, { times: 1 });
    const without = await mint(P1);
    expectEnvelope(without, 429);
    expect(without.headers["retry-after"]).toBeUndefined();
  });

  it("non_json: an HTML body with the given status (default 502)", async () => {
    sandbox.injectFault({ kind: "non_json", status: 200 }, { times: 1 });
    sandbox.injectFault({ kind: "non_json" }, { times: 1 });
    const ok = await mint(P1);
    expect(ok.status).toBe(200);
    expect(ok.headers["content-type"]).toMatch(/^text\/html/);
    expect(ok.text).toMatch(/^<!DOCTYPE html>/);
    const bad = await mint(P1);
    expect(bad.status).toBe(502);
    expect(bad.json).toBeUndefined();
  });

  it("raw: any literal answer", async () => {
    sandbox.injectFault({ kind: "raw", status: 201, body: '{"data":{"tok' }, { times: 1 });
    sandbox.injectFault({ kind: "raw", status: 200, body: "hello", contentType: "text/plain", headers: { "x-extra": "1" } }, { times: 1 });
    const truncated = await mint(P1);
    expect(truncated.status).toBe(201);
    expect(truncated.text).toBe('{"data":{"tok');
    const plain = await mint(P1);
    expect(plain.status).toBe(200);
    expect(plain.text).toBe("hello");
    expect(plain.headers["content-type"]).toBe("text/plain");
    expect(plain.headers["x-extra"]).toBe("1");
    expect(sandbox.state(P1)).toBeUndefined();
  });

  it("hang: accepts and never answers until the client gives up; recorded with status 0", async () => {
    sandbox.injectFault({ kind: "hang" }, { times: 1 });
    const controller = new AbortController();
    let settled = false;
    const pending = call("POST", "/workers/session", { body: { data: { profile_id: P1 } }, signal: controller.signal }).finally(() => (settled = true));
    for (let i = 0; i < 100 && sandbox.requests.length === 0; i++) await sleep(10);
    // Accepted, and no answer while the client still waits; then the client gives up.
    expect(sandbox.requests).toHaveLength(1);
    await sleep(50);
    expect(settled).toBe(false);
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(sandbox.requests).toHaveLength(1);
    expect(sandbox.requests[0]?.status).toBe(0);
    expect(sandbox.state(P1)).toBeUndefined();
    expect((await mint(P1)).status).toBe(201);
  });

  it("reset: destroys the socket without answering", async () => {
    sandbox.injectFault({ kind: "reset" }, { times: 1 });
    await expect(mint(P1)).rejects.toThrow();
    expect(sandbox.requests[0]?.status).toBe(0);
    expect((await mint(P1)).status).toBe(201);
  });

  it("clearFaults removes every fault; invalid faults are refused", async () => {
    sandbox.injectFault({ kind: "status", status: 500 });
    sandbox.clearFaults();
    expect((await mint(P1)).status).toBe(201);
    expect(() => sandbox.injectFault({ kind: "status", status: 42 })).toThrow(TypeError);
    expect(() => sandbox.injectFault({ kind: "boom" } as never)).toThrow(TypeError);
    expect(() => sandbox.injectFault({ kind: "hang" }, { times: 0 })).toThrow(TypeError);
  });
});

describe("HTTP control surface", () => {
  it("requires the org token: 401 without, 403 for the read-only token", async () => {
    expectEnvelope(await call("POST", "/__sandbox/reset", { token: null }), 401);
    expectEnvelope(await call("POST", "/__sandbox/reset", { token: sandbox.readOnlyToken }), 403);
    expectEnvelope(await call("GET", "/__sandbox/nothing"), 404);
  });

  it("injects and clears faults", async () => {
    expect((await call("POST", "/__sandbox/faults", { body: { fault: { kind: "status", status: 503 }, times: 1, method: "POST" } })).status).toBe(204);
    expectEnvelope(await mint(P1), 503);
    expect((await mint(P1)).status).toBe(201);
    expect((await call("POST", "/__sandbox/faults", { body: { fault: { kind: "status", status: 500 } } })).status).toBe(204);
    expect((await call("DELETE", "/__sandbox/faults")).status).toBe(204);
    expect((await mint(P1)).status).toBe(201);
    expectEnvelope(await call("POST", "/__sandbox/faults", { body: { fault: { kind: "explode" } } }), 400);
    expectEnvelope(await call("POST", "/__sandbox/faults", { body: { fault: { kind: "hang" }, method: "GET" } }), 400);
    expectEnvelope(await call("POST", "/__sandbox/faults", { body: "{nope" }), 400);
  });

  it("changes settings", async () => {
    const res = await call("PUT", "/__sandbox/settings", { body: { tokenLifetimeMs: 60_000, rateLimitRps: 1, latencyMs: 0 } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ latencyMs: 0, tokenLifetimeMs: 60_000, rateLimitRps: 1 });
    const minted = await mint(P1);
    const expiresAt = Date.parse((minted.json as { data: { expires_at: string } }).data.expires_at);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    expectEnvelope(await mint(P1), 429);
    expectEnvelope(await call("PUT", "/__sandbox/settings", { body: { latencyMs: -1 } }), 400);
  });

  it("reports state without the token, the recorded requests, and resets", async () => {
    const token = tokenOf(await mint(P1));
    const state = await call("GET", `/__sandbox/state/${P1}`);
    expect(state.status).toBe(200);
    expect(state.json).toEqual({ expiresAt: sandbox.state(P1)!.expiresAt.toISOString(), revoked: false });
    expect(state.text).not.toContain(token);
    await revoke(P1);
    expect((await call("GET", `/__sandbox/state/${P1}`)).json).toMatchObject({ revoked: true });
    expectEnvelope(await call("GET", `/__sandbox/state/${P2}`), 404);

    const recorded = await call("GET", "/__sandbox/requests");
    expect(recorded.json).toEqual({
      data: [
        { method: "POST", path: "/rest/v2/workers/session", status: 201, at: expect.any(Number) },
        { method: "DELETE", path: `/rest/v2/workers/${P1}/session`, status: 204, at: expect.any(Number) },
      ],
    });
    expect((await call("POST", "/__sandbox/reset")).status).toBe(204);
    expect(sandbox.requests).toEqual([]);
    expect(sandbox.state(P1)).toBeUndefined();
    expectEnvelope(await me(token), 401);
  });
});

describe("robustness", () => {
  it("serves concurrent requests over keep-alive connections", async () => {
    const answers = await Promise.all(SEEDED_PROFILE_IDS.flatMap((id) => [mint(id), mint(id), revoke(id), mint(id)]));
    expect(answers.every((a) => a.status === 201 || a.status === 204)).toBe(true);
    expect(sandbox.count()).toBe(20);
    expect(sandbox.count({ method: "DELETE", status: 204 })).toBe(5);
  });

  it("survives a client that aborts mid-body", async () => {
    const { port } = new URL(sandbox.url);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1", () => {
        socket.write(
          `POST /rest/v2/workers/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${sandbox.orgToken}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"data":`,
        );
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
      socket.on("error", reject);
    });
    await sleep(50);
    expect(sandbox.requests[0]?.status).toBe(0);
    expect((await mint(P1)).status).toBe(201);
  });

  it("survives a client that aborts during the latency, and still applies the call", async () => {
    sandbox.setLatency(300);
    await expect(call("POST", "/workers/session", { body: { data: { profile_id: P2 } }, signal: AbortSignal.timeout(50) })).rejects.toThrow();
    await sleep(500);
    expect(sandbox.state(P2)?.revoked).toBe(false);
    sandbox.setLatency(0);
    expect((await mint(P1)).status).toBe(201);
  });

  it("close() does not wait for hung requests", async () => {
    const local = await startDeelSandbox({ latencyMs: 0 });
    local.injectFault({ kind: "hang" });
    const pending = request(`${local.url}/workers/session`, {
      method: "POST",
      headers: { authorization: `Bearer ${local.orgToken}` },
      body: JSON.stringify({ data: { profile_id: P1 } }),
      dispatcher: agent,
    });
    const failed = pending.then(
      () => "answered",
      () => "failed",
    );
    for (let i = 0; i < 100 && local.requests.length === 0; i++) await sleep(10);
    expect(local.requests).toHaveLength(1);
    // The hung request is never answered: a close() that waited for it would never end.
    await local.close();
    expect(await failed).toBe("failed");
  });

  it("reset() forgets sessions, idempotency records, requests and faults", async () => {
    await mint(P1, { "idempotency-key": "r" });
    sandbox.injectFault({ kind: "status", status: 500 });
    sandbox.reset();
    expect(sandbox.requests).toEqual([]);
    expect(sandbox.state(P1)).toBeUndefined();
    const again = await mint(P1, { "idempotency-key": "r" });
    expect(again.status).toBe(201);
    expect(again.headers["x-original-request-id"]).toBeUndefined();
  });
});
