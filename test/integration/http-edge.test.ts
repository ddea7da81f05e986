import { once } from "node:events";
import type { Socket } from "node:net";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APOLLO_SANDBOX_ORIGIN } from "../../src/app.js";
import { CreateWorkerSessionDocument } from "../generated/operations.js";
import { anAdminToken } from "../support/callers.js";
import { gql, startTestGateway, type TestGateway } from "../support/gateway.js";
import { startLocalGateway, type LocalGateway } from "../support/local-gateway.js";
import { ask, openSocket, statusOf, trickle, whenClosed } from "../support/raw-http.js";

const APP_ORIGIN = "https://app.example.com";
const EVIL_ORIGIN = "https://evil.example.com";
/** What a fresh request id looks like: a random UUID. */
const FRESH_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** The headers the gateway's own clients send (Apollo Client, Sandbox, routers). */
const CLIENT_HEADERS = [
  "authorization",
  "content-type",
  "x-request-id",
  "apollo-require-preflight",
  "x-apollo-operation-name",
  "apollographql-client-name",
  "apollographql-client-version",
];

let prod: TestGateway;
let admin: string;
let P1: string;

beforeAll(async () => {
  prod = await startTestGateway({ env: { NODE_ENV: "production", CORS_ORIGINS: APP_ORIGIN } });
  admin = await anAdminToken();
  [P1] = prod.sandbox.profiles as [string];
});
afterAll(() => prod.close());

/** A CORS preflight for a POST to `/graphql`. */
async function preflight(url: string, origin: string, headers: Record<string, string> = {}) {
  const response = await request(url, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", ...headers },
  });
  await response.body.dump();
  return { status: response.statusCode, headers: response.headers };
}

/** The header names a preflight answer admits, lower-cased. */
function allowedHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const value = headers["access-control-allow-headers"];
  return typeof value === "string" ? value.split(",").map((name) => name.trim().toLowerCase()) : [];
}

describe("slow and surplus clients (HTTP_REQUEST_TIMEOUT_MS, HTTP_MAX_CONNECTIONS)", () => {
  let slow: TestGateway;
  beforeAll(async () => {
    slow = await startTestGateway({ env: { HTTP_REQUEST_TIMEOUT_MS: "1000", HTTP_KEEP_ALIVE_TIMEOUT_MS: "3000" } });
  });
  afterAll(() => slow.close());

  // Both slow clients would need 30 s to finish; the gateway must cut them long before that. The
  // longer test timeout lets the old behaviour fail on the assertion rather than on the clock.
  it("cuts a client that sends a body one byte at a time, before the body is complete", { timeout: 60_000 }, async () => {
    const head = "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    const closed = await trickle(slow.origin, head, Array<string>(100).fill(" "), 300);
    expect(closed.piecesSent).toBeLessThan(100);
    expect(closed.received).toMatch(/^(?:$|HTTP\/1\.1 408 )/);
  });

  it("cuts a client that sends its headers one line at a time, before they are complete", { timeout: 60_000 }, async () => {
    const lines = Array.from({ length: 99 }, (_, i) => `x-slow-${i}: 1\r\n`);
    const closed = await trickle(slow.origin, "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n", [...lines, "\r\n"], 300);
    expect(closed.piecesSent).toBeLessThan(100);
    expect(closed.received).toMatch(/^(?:$|HTTP\/1\.1 408 )/);
  });

  it("cuts a client that connects and sends nothing", async () => {
    const closed = await trickle(slow.origin, "", [], 300);
    expect(closed.received).toMatch(/^(?:$|HTTP\/1\.1 408 )/);
  });

  it("still answers a request sent at normal speed, and advertises HTTP_KEEP_ALIVE_TIMEOUT_MS", async () => {
    const response = await gql<{ __typename: string }, never>(slow.url, "{ __typename }", undefined, { token: admin });
    expect(response.status).toBe(200);
    expect(response.data).toEqual({ __typename: "Query" });
    expect(response.headers["keep-alive"]).toBe("timeout=3");
  });

  it("drops a connection past HTTP_MAX_CONNECTIONS while the ones before it stay open and are served", async () => {
    const capped = await startTestGateway({ env: { HTTP_MAX_CONNECTIONS: "2", HTTP_MAX_CONNECTIONS_PER_ADDRESS: "2" } });
    try {
      const first = await openSocket(capped.origin);
      const firstClosed = whenClosed(first);
      const second = await openSocket(capped.origin);
      const secondClosed = whenClosed(second);
      const dropped = once(capped.app.server, "drop");

      const third = await openSocket(capped.origin);
      const thirdClosed = whenClosed(third);
      third.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
      expect((await thirdClosed).received).toBe("");
      await dropped;

      expect([first.destroyed, second.destroyed]).toEqual([false, false]);
      first.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
      expect(statusOf((await firstClosed).received)).toBe(200);
      second.destroy();
      await secondClosed;
    } finally {
      await capped.close();
    }
  });
});

describe("one client address cannot take every connection (HTTP_MAX_CONNECTIONS_PER_ADDRESS)", () => {
  // The attack, scaled down: one address opens more keep-alive connections than the whole
  // server admits (30 against HTTP_MAX_CONNECTIONS=24) and holds them; another address must still
  // be answered, on /healthz, /readyz and /graphql.
  it("caps the connections of one address, and answers another address while they are held", { timeout: 60_000 }, async () => {
    const capped = await startTestGateway({ env: { HTTP_MAX_CONNECTIONS: "24", HTTP_MAX_CONNECTIONS_PER_ADDRESS: "8" } });
    const held: Socket[] = [];
    try {
      const answered: Array<number | undefined> = [];
      for (let i = 0; i < 30; i += 1) {
        const socket = await openSocket(capped.origin, "127.0.0.1");
        held.push(socket);
        answered.push(await ask(socket, "/healthz"));
      }
      console.log(`the flooding address got ${answered.filter((status) => status === 200).length} of 30 connections answered`);
      expect(answered.filter((status) => status === 200)).toHaveLength(8);
      expect(answered.slice(0, 8)).toEqual(Array<number>(8).fill(200));

      const other: Array<number | undefined> = [];
      for (const path of ["/healthz", "/readyz", "/healthz", "/readyz"]) {
        const socket = await openSocket(capped.origin, "127.0.0.2");
        held.push(socket);
        other.push(await ask(socket, path));
      }
      const fromOther = new Agent({ localAddress: "127.0.0.2" });
      let graphql: { status: number; body: unknown } | undefined;
      try {
        const response = await request(capped.url, {
          method: "POST",
          dispatcher: fromOther,
          headers: { "content-type": "application/json", authorization: `Bearer ${admin}` },
          body: JSON.stringify({ query: "{ __typename }" }),
        });
        graphql = { status: response.statusCode, body: await response.body.json() };
      } catch {
        graphql = undefined;
      } finally {
        await fromOther.close();
      }
      console.log(`the other address got ${other.filter((status) => status === 200).length + (graphql?.status === 200 ? 1 : 0)} of 5 answers`);
      expect(other).toEqual([200, 200, 200, 200]);
      expect(graphql).toEqual({ status: 200, body: { data: { __typename: "Query" } } });

      // The first connections of the flooding address stay open and served.
      expect(await ask(held[0] as Socket, "/healthz")).toBe(200);
    } finally {
      for (const socket of held) socket.destroy();
      await capped.close();
    }
  });

  it("frees an address's slot when one of its connections closes", async () => {
    const capped = await startTestGateway({ env: { HTTP_MAX_CONNECTIONS_PER_ADDRESS: "1" } });
    try {
      const first = await openSocket(capped.origin, "127.0.0.3");
      expect(await ask(first, "/healthz")).toBe(200);
      const refused = await openSocket(capped.origin, "127.0.0.3");
      expect(await ask(refused, "/healthz")).toBeUndefined();
      const closed = whenClosed(first);
      first.destroy();
      await closed;
      // The server sees the close a moment after the client: a few tries, each a new connection.
      let status: number | undefined;
      for (let attempt = 0; attempt < 50 && status === undefined; attempt += 1) {
        const next = await openSocket(capped.origin, "127.0.0.3");
        status = await ask(next, "/healthz");
        if (status === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
        else next.destroy();
      }
      expect(status).toBe(200);
    } finally {
      await capped.close();
    }
  });
});

describe("CORS", () => {
  it("reflects the request headers an admitted origin asks for, its own custom ones included", async () => {
    const answer = await preflight(prod.url, APP_ORIGIN, { "access-control-request-headers": "x-custom-header, authorization" });
    expect(answer.status).toBe(204);
    expect(answer.headers["access-control-allow-origin"]).toBe(APP_ORIGIN);
    expect(allowedHeaders(answer.headers)).toEqual(expect.arrayContaining(["x-custom-header", "authorization"]));
  });

  it("still admits every header the gateway's clients send", async () => {
    const answer = await preflight(prod.url, APP_ORIGIN, { "access-control-request-headers": CLIENT_HEADERS.join(",") });
    expect(answer.headers["access-control-allow-origin"]).toBe(APP_ORIGIN);
    expect(allowedHeaders(answer.headers)).toEqual(expect.arrayContaining(CLIENT_HEADERS));
  });

  it("gives an origin outside CORS_ORIGINS no Access-Control-Allow-Origin, even for the same request headers", async () => {
    const answer = await preflight(prod.url, EVIL_ORIGIN, { "access-control-request-headers": "x-custom-header, authorization" });
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("answers a Private Network Access preflight only for an admitted origin", async () => {
    const asks = { "access-control-request-headers": "content-type", "access-control-request-private-network": "true" };
    const admitted = await preflight(prod.url, APP_ORIGIN, asks);
    expect(admitted.headers["access-control-allow-origin"]).toBe(APP_ORIGIN);
    expect(admitted.headers["access-control-allow-private-network"]).toBe("true");
    const refused = await preflight(prod.url, EVIL_ORIGIN, asks);
    expect(refused.headers["access-control-allow-origin"]).toBeUndefined();
    expect(refused.headers["access-control-allow-private-network"]).toBeUndefined();
    // In production the Sandbox origin is not admitted, so it gets no private-network grant either.
    const sandbox = await preflight(prod.url, APOLLO_SANDBOX_ORIGIN, asks);
    expect(sandbox.headers["access-control-allow-origin"]).toBeUndefined();
    expect(sandbox.headers["access-control-allow-private-network"]).toBeUndefined();
  });

  it("grants nothing private-network to a preflight that does not ask for it", async () => {
    const answer = await preflight(prod.url, APP_ORIGIN, { "access-control-request-headers": "content-type" });
    expect(answer.headers["access-control-allow-origin"]).toBe(APP_ORIGIN);
    expect(answer.headers["access-control-allow-private-network"]).toBeUndefined();
  });

  describe("in local mode", () => {
    let local: LocalGateway;
    beforeAll(async () => {
      local = await startLocalGateway();
    });
    afterAll(() => local.close());

    it("lets Apollo Sandbox reach the gateway on loopback: its Private Network Access preflight is granted, with a custom header", async () => {
      const answer = await preflight(local.url, APOLLO_SANDBOX_ORIGIN, {
        "access-control-request-headers": "authorization, content-type, x-custom-header",
        "access-control-request-private-network": "true",
      });
      expect(answer.status).toBe(204);
      expect(answer.headers["access-control-allow-origin"]).toBe(APOLLO_SANDBOX_ORIGIN);
      expect(answer.headers["access-control-allow-private-network"]).toBe("true");
      expect(allowedHeaders(answer.headers)).toEqual(expect.arrayContaining(["authorization", "content-type", "x-custom-header"]));
    });

    it("refuses the same Private Network Access preflight from any other origin", async () => {
      const answer = await preflight(local.url, EVIL_ORIGIN, { "access-control-request-private-network": "true" });
      expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
      expect(answer.headers["access-control-allow-private-network"]).toBeUndefined();
    });
  });
});

describe("the explorer page at GET /graphql", () => {
  /** The `access-control-*` headers of an answer, by name. */
  function corsHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
    return Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith("access-control-")));
  }

  /** Asks for the page as a browser navigating to it does, from `origin` when given. */
  async function page(url: string, origin?: string) {
    const response = await request(url, { headers: { accept: "text/html", ...(origin === undefined ? {} : { origin }) } });
    const html = await response.body.text();
    return { status: response.statusCode, headers: response.headers, html };
  }

  let dev: TestGateway;
  let local: LocalGateway;
  beforeAll(async () => {
    dev = await startTestGateway({ env: { CORS_ORIGINS: APP_ORIGIN } });
    local = await startLocalGateway({ CORS_ORIGINS: APP_ORIGIN });
  });
  afterAll(async () => {
    await dev?.close();
    await local?.close();
  });

  it.each([
    { name: "outside production", url: () => dev.url, origins: [undefined, APP_ORIGIN, EVIL_ORIGIN] },
    { name: "in local mode", url: () => local.url, origins: [undefined, APP_ORIGIN, APOLLO_SANDBOX_ORIGIN, "http://localhost:5173", EVIL_ORIGIN] },
  ])("carries no access-control-* header $name, whatever origin asks for it", async ({ url, origins }) => {
    for (const origin of origins) {
      const answer = await page(url(), origin);
      expect(answer.status).toBe(200);
      expect(answer.headers["content-type"]).toMatch(/^text\/html/);
      expect(answer.html).toContain("<html");
      expect(corsHeaders(answer.headers), `origin ${origin ?? "(none)"}`).toEqual({});
    }
  });

  it("leaves a JSON answer's CORS headers as they were, for a GET and a POST from an admitted origin", async () => {
    const search = `?query=${encodeURIComponent("{ __typename }")}`;
    const get = await request(`${dev.url}${search}`, { headers: { origin: APP_ORIGIN, "apollo-require-preflight": "true", authorization: `Bearer ${admin}` } });
    await get.body.dump();
    expect(get.headers["content-type"]).toMatch(/json/);
    expect(get.headers["access-control-allow-origin"]).toBe(APP_ORIGIN);
    expect(get.headers["access-control-expose-headers"]).toBe("x-request-id");
    const post = await request(local.url, {
      method: "POST",
      headers: { origin: APOLLO_SANDBOX_ORIGIN, "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    await post.body.dump();
    expect(post.headers["access-control-allow-origin"]).toBe(APOLLO_SANDBOX_ORIGIN);
    expect(post.headers["access-control-expose-headers"]).toBe("x-request-id");
  });
});

describe("Cache-Control: no-store on every /graphql answer", () => {
  const query = JSON.stringify({ query: "{ __typename }" });
  const json = { "content-type": "application/json" };
  const cases: Array<{ name: string; status: number; send: () => ReturnType<typeof request> }> = [
    { name: "a POST that succeeds", status: 200, send: () => request(prod.url, { method: "POST", headers: { ...json, authorization: `Bearer ${admin}` }, body: query }) },
    {
      name: "a POST that fails validation",
      status: 400,
      send: () => request(prod.url, { method: "POST", headers: json, body: JSON.stringify({ query: "{ noSuchField }" }) }),
    },
    {
      name: "a GET that succeeds",
      status: 200,
      send: () => request(`${prod.url}?query=${encodeURIComponent("{ __typename }")}`, { headers: { "apollo-require-preflight": "true", authorization: `Bearer ${admin}` } }),
    },
    { name: "a GET refused by CSRF prevention", status: 400, send: () => request(`${prod.url}?query=${encodeURIComponent("{ __typename }")}`) },
    {
      name: "a body over the size limit (413)",
      status: 413,
      send: () => request(prod.url, { method: "POST", headers: json, body: JSON.stringify({ query: "{ __typename }", pad: "x".repeat(101 * 1024) }) }),
    },
    { name: "a compressed body (415)", status: 415, send: () => request(prod.url, { method: "POST", headers: { ...json, "content-encoding": "gzip" }, body: query }) },
    { name: "malformed JSON (400)", status: 400, send: () => request(prod.url, { method: "POST", headers: json, body: "{" }) },
    {
      name: "a CORS preflight",
      status: 204,
      send: () => request(prod.url, { method: "OPTIONS", headers: { origin: APP_ORIGIN, "access-control-request-method": "POST" } }),
    },
  ];

  it.each(cases)("is sent with $name", async ({ status, send }) => {
    const response = await send();
    await response.body.dump();
    expect(response.statusCode).toBe(status);
    expect(response.headers["cache-control"]).toBe("no-store");
  });

  it("is sent with the 401 for a request without the router secret", async () => {
    const secret = "router-secret-0123456789abcdef";
    const guarded = await startTestGateway({ env: { ROUTER_SECRET: secret } });
    try {
      const response = await gql(guarded.url, "{ __typename }", undefined, { token: admin });
      expect(response.status).toBe(401);
      expect(response.headers["cache-control"]).toBe("no-store");
    } finally {
      await guarded.close();
    }
  });

  it("is not forced on the operations routes", async () => {
    const response = await request(`${prod.origin}/healthz`);
    await response.body.dump();
    expect(response.statusCode).toBe(200);
    expect(response.headers["cache-control"]).toBeUndefined();
  });
});

describe("x-request-id", () => {
  /** Creates a session with the given x-request-id; returns the id the gateway used and the log lines that carry it. */
  async function createWith(requestId: string) {
    const before = prod.sandbox.requests.length;
    const response = await gql(prod.url, CreateWorkerSessionDocument, { input: { profileId: P1 } }, { token: admin, headers: { "x-request-id": requestId } });
    expect(response.errors).toBeUndefined();
    const used = response.headers["x-request-id"] as string;
    const lines = prod.logs.lines.map((line) => JSON.parse(line) as { requestId?: string; audit?: { requestId?: string } });
    return {
      used,
      toDeel: prod.sandbox.requests.slice(before).map((r) => r.requestId),
      audited: lines.filter((line) => line.audit?.requestId === used).length,
    };
  }

  it("echoes a valid id of 128 characters and uses it in the audit line and toward Deel", async () => {
    const valid = `req.A-z_0:${"7".repeat(118)}`;
    expect(valid).toHaveLength(128);
    const { used, toDeel, audited } = await createWith(valid);
    expect(used).toBe(valid);
    expect(toDeel).toEqual([valid]);
    expect(audited).toBe(1);
  });

  it.each([
    { name: "one of 129 characters", id: `req-${"7".repeat(125)}` },
    { name: "one with markup", id: "<script>alert(1)</script>" },
    { name: "one with spaces", id: "req id 42" },
    { name: "a revocation job's id, which only a job's own revokes carry", id: "revocation-job:0b7d5f3e-9a1c-4c2e-8f5b-3d2a1e0c9b8a" },
    { name: "a revocation job's id in another letter case", id: "Revocation-Job:forged-by-a-client" },
  ])("replaces $name with a fresh UUID in the response, the audit line and toward Deel, and never logs it", async ({ id }) => {
    const { used, toDeel, audited } = await createWith(id);
    expect(used).toMatch(FRESH_ID);
    expect(toDeel).toEqual([used]);
    expect(audited).toBe(1);
    expect(prod.logs.text).not.toContain(id);
  });
});
