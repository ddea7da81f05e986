/**
 * Tracing, end to end: the built gateway (`node dist/main.js`) with OTEL_EXPORTER_OTLP_ENDPOINT set,
 * behind Hive Gateway with its OpenTelemetry plugin on, both exporting with the OpenTelemetry SDK's
 * OTLP/HTTP exporter to a receiver this test runs on loopback. The assertions read the spans the
 * exporters sent: one trace across the router and the subgraph, the Deel attempts, the ledger, the
 * pacing wait, and no token, link or Authorization anywhere in what was exported.
 *
 * Apollo federated tracing (ftv1) is checked on an in-process gateway: answered only when
 * APOLLO_FEDERATED_TRACING is on and the router asks for it.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { useOpenTelemetry } from "@graphql-hive/gateway/opentelemetry";
import { openTelemetrySetup } from "@graphql-hive/gateway/opentelemetry/setup";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";
import { anAdminToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { gql, startTestGateway } from "../support/gateway.js";
import { startGatewayProcess, type GatewayProcess } from "../support/process.js";
import { composeSupergraph, startHiveGatewayRouter, startHrSubgraph, type HrSubgraph, type Running } from "../support/supergraph.js";

const ROUTER_SECRET = "router-secret-for-tracing-0123456";
const GATEWAY_SERVICE = "worker-sessions-under-test";
const ROUTER_SERVICE = "hive-router-under-test";
const APP = "https://app.example.com";
const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;

/** An OTLP/JSON attribute value, as the SDK's JSON serializer writes it. */
interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: KeyValue[];
  events?: Array<{ name: string; attributes?: KeyValue[] }>;
  status?: { code?: number; message?: string };
}
interface ExportRequest {
  resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

/** A span as received, with its service and attributes flattened. */
interface ReceivedSpan extends OtlpSpan {
  service: string;
  attrs: Record<string, unknown>;
}

function plain(value: AnyValue): unknown {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(plain);
  return undefined;
}
const flatten = (attributes: KeyValue[] | undefined) => Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, plain(value)]));

/** An OTLP/HTTP receiver on loopback: keeps every raw body and every decoded span. */
interface Receiver {
  url: string;
  bodies: string[];
  contentTypes: string[];
  spans: ReceivedSpan[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const bodies: string[] = [];
  const contentTypes: string[] = [];
  const spans: ReceivedSpan[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      bodies.push(raw);
      contentTypes.push(String(req.headers["content-type"]));
      if (req.url !== "/v1/traces" || !String(req.headers["content-type"]).startsWith("application/json")) {
        res.writeHead(415).end();
        return;
      }
      const request = JSON.parse(raw) as ExportRequest;
      for (const resourceSpans of request.resourceSpans ?? []) {
        const service = String(flatten(resourceSpans.resource?.attributes)["service.name"]);
        for (const scope of resourceSpans.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) spans.push({ ...span, service, attrs: flatten(span.attributes) });
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    contentTypes,
    spans,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Hive Gateway in this process with its OpenTelemetry plugin on, exporting to `tracesUrl`. */
async function startTracedHiveRouter(supergraphSdl: string, tracesUrl: string): Promise<Running> {
  openTelemetrySetup({
    contextManager: new AsyncLocalStorageContextManager(),
    resource: { serviceName: ROUTER_SERVICE },
    traces: { exporter: new OTLPTraceExporter({ url: tracesUrl }), batching: false },
  });
  // What `openTelemetry: { traces: true }` in gateway.config.ts installs.
  return startHiveGatewayRouter(supergraphSdl, ROUTER_SECRET, (ctx) => [useOpenTelemetry({ ...ctx, traces: true })]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (bounded) until the receiver holds a span matching `match`. */
async function spanArrives(receiver: Receiver, match: (span: ReceivedSpan) => boolean, what: string): Promise<ReceivedSpan> {
  for (let i = 0; i < 300; i += 1) {
    const found = receiver.spans.find(match);
    if (found !== undefined) return found;
    await sleep(50);
  }
  throw new Error(`no span ${what} arrived; received: ${receiver.spans.map((s) => `${s.service}:${s.name}`).join(", ")}`);
}

const nanos = (value: string | number) => BigInt(value);

describe("tracing through Hive Gateway to the built gateway", () => {
  let receiver: Receiver;
  let sandbox: DeelSandbox;
  let gateway: GatewayProcess;
  let hr: HrSubgraph;
  let router: Running;
  let admin: string;
  let profile: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    sandbox = await startDeelSandbox({ rateLimitRps: 0 });
    profile = sandbox.profiles[0] as string;
    gateway = await startGatewayProcess({
      HOST: "127.0.0.1",
      PORT: "0",
      DEEL_API_URL: sandbox.url,
      DEEL_API_TOKEN: sandbox.orgToken,
      // Pacing on, so that the wait for a budget slot is traced.
      DEEL_RATE_LIMIT_RPS: "5",
      DEEL_RETRY_BASE_MS: "20",
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      AUTH_ISSUER: TEST_ISSUER,
      AUTH_AUDIENCE: TEST_AUDIENCE,
      SESSION_STORE_URL: "memory:",
      ROUTER_SECRET,
      MAGIC_LINK_REDIRECT_ORIGINS: APP,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: GATEWAY_SERVICE,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    hr = await startHrSubgraph(new Map([[profile, "Ada"]]));
    router = await startTracedHiveRouter(composeSupergraph({ hr: hr.url, workerSessions: gateway.url }), `${receiver.url}/v1/traces`);
    admin = await anAdminToken();
  }, 60_000);
  afterAll(async () => {
    await router?.stop();
    await hr?.stop();
    await gateway?.stop();
    await sandbox?.close();
    await receiver?.close();
  });

  /** The secrets this test minted or saw: none may appear in anything exported. */
  const secrets: string[] = [];

  it("continues the router's trace: the subgraph's spans share its trace id and hang under its fetch", async () => {
    // The first create attempt gets a 503: the retry is the second attempt of the same call.
    sandbox.injectFault({ kind: "status", status: 503 }, { times: 1, route: "create" });
    const created = await gql<{ createWorkerSession: { token: string } }, unknown>(
      router.url,
      `mutation Mint($profileId: ID!) { createWorkerSession(input: { profileId: $profileId }) { token } }`,
      { profileId: profile },
      { token: admin },
    );
    expect(created.errors).toBeUndefined();
    const workerToken = created.data?.createWorkerSession.token as string;
    expect(workerToken.length).toBeGreaterThan(10);
    secrets.push(admin, workerToken, sandbox.orgToken);

    const operation = await spanArrives(receiver, (s) => s.service === GATEWAY_SERVICE && s.name === "mutation Mint", "for the subgraph's operation");
    expect(operation.kind).toBe(SPAN_KIND.SERVER);
    expect(operation.attrs).toMatchObject({ "graphql.operation.type": "mutation", "graphql.operation.name": "Mint", "http.route": "/graphql", "http.response.status_code": 200 });

    // The router's spans: same trace, and the subgraph's span is the child of one of them.
    const routerSpan = await spanArrives(receiver, (s) => s.service === ROUTER_SERVICE && s.spanId === operation.parentSpanId, "of the router that parents the subgraph's");
    expect(routerSpan.traceId).toBe(operation.traceId);
    // The router's fetch to this subgraph carried the traceparent.
    expect(routerSpan.kind).toBe(SPAN_KIND.CLIENT);
    expect(routerSpan.attrs["http.url"]).toBe(gateway.url);
    // The trace starts at the router's own server span, the root.
    const root = await spanArrives(receiver, (s) => s.service === ROUTER_SERVICE && s.traceId === operation.traceId && s.kind === SPAN_KIND.SERVER, "for the router's request");
    expect(root.parentSpanId ?? "").toBe("");
    const routerSpans = receiver.spans.filter((s) => s.service === ROUTER_SERVICE && s.traceId === operation.traceId).map((s) => s.name);
    expect(routerSpans).toEqual(expect.arrayContaining(["graphql.operation Mint", "subgraph.execute (worker-sessions)", "http.fetch"]));
  });

  it("records each Deel attempt with its route template, status, attempt number and Deel request id", async () => {
    const operation = await spanArrives(receiver, (s) => s.service === GATEWAY_SERVICE && s.name === "mutation Mint", "for the operation");
    const attempts = await (async () => {
      for (let i = 0; i < 100; i += 1) {
        const found = receiver.spans.filter((s) => s.traceId === operation.traceId && s.name === "POST /workers/session");
        if (found.length >= 2) return found.sort((a, b) => Number(a.attrs["deel.attempt"]) - Number(b.attrs["deel.attempt"]));
        await sleep(50);
      }
      throw new Error("the two attempts never arrived");
    })();
    expect(attempts.map((s) => s.parentSpanId)).toEqual([operation.spanId, operation.spanId]);
    expect(attempts.map((s) => s.kind)).toEqual([SPAN_KIND.CLIENT, SPAN_KIND.CLIENT]);
    expect(attempts[0]?.attrs).toMatchObject({
      "http.request.method": "POST",
      "url.template": "/workers/session",
      "http.response.status_code": 503,
      "deel.attempt": 1,
      "http.request.resend_count": 0,
      "error.type": "unavailable",
      // Deel's id for the failed request, from its error answer.
      "deel.request_id": expect.stringMatching(/\S/),
    });
    expect(attempts[1]?.attrs).toMatchObject({
      "http.request.method": "POST",
      "url.template": "/workers/session",
      "http.response.status_code": 201,
      "deel.attempt": 2,
      "http.request.resend_count": 1,
    });
    // Both carry the x-request-id Deel received, which correlates them with Deel's logs.
    const sent = sandbox.requests.filter((r) => r.method === "POST" && r.path.endsWith("/workers/session")).map((r) => r.requestId);
    expect(sent.length).toBe(2);
    expect(attempts.map((s) => s.attrs["http.request.header.x-request-id"])).toEqual(sent.map((id) => [id]));
    // The retry the resilience layer scheduled between them is an event on the operation.
    const retries = (operation.events ?? []).filter((e) => e.name === "deel.retry").map((e) => flatten(e.attributes));
    expect(retries).toEqual([
      { "deel.endpoint": "POST /workers/session", "deel.attempt": 1, "deel.retry_in_ms": expect.any(Number), "error.type": "unavailable" },
    ]);
  });

  it("records the pacing wait before each attempt, and the ledger operations of the mint", async () => {
    const operation = await spanArrives(receiver, (s) => s.service === GATEWAY_SERVICE && s.name === "mutation Mint", "for the operation");
    const inTrace = () => receiver.spans.filter((s) => s.traceId === operation.traceId && s.service === GATEWAY_SERVICE);
    await spanArrives(receiver, (s) => s.traceId === operation.traceId && s.name === "ledger put", "for the ledger write");
    const waits = inTrace().filter((s) => s.name === "deel.budget.wait");
    expect(waits.length).toBe(2);
    const attempts = inTrace().filter((s) => s.name === "POST /workers/session");
    for (const wait of waits) {
      expect(wait.parentSpanId).toBe(operation.spanId);
      expect(typeof wait.attrs["deel.budget.queue_depth"]).toBe("number");
      // Each wait ends as an attempt starts: it is the pacing in front of it (span start times are
      // recorded to the millisecond, end times to the nanosecond).
      expect(attempts.some((a) => nanos(a.startTimeUnixNano) + 1_000_000n >= nanos(wait.endTimeUnixNano))).toBe(true);
    }
    const ledger = inTrace().filter((s) => s.name.startsWith("ledger "));
    expect(ledger.map((s) => s.name)).toEqual(expect.arrayContaining(["ledger begin_mint", "ledger put"]));
    for (const span of ledger) {
      expect(span.parentSpanId).toBe(operation.spanId);
      expect(span.attrs).toMatchObject({ "db.system.name": "memory", "db.operation.name": span.name.slice("ledger ".length) });
    }
  });

  it("traces a read through the router with a batch ledger read under the entity fetch", async () => {
    const read = await gql<{ worker: { name: string; session: { status: string } | null } }, unknown>(
      router.url,
      `query Team($profileId: ID!) { worker(profileId: $profileId) { name session { status } } }`,
      { profileId: profile },
      { token: admin },
    );
    expect(read.data?.worker).toEqual({ name: "Ada", session: { status: "ACTIVE" } });
    const operation = await spanArrives(receiver, (s) => s.service === GATEWAY_SERVICE && s.attrs["graphql.operation.type"] === "query" && s.kind === SPAN_KIND.SERVER, "for the entity fetch");
    const ledgerRead = await spanArrives(receiver, (s) => s.traceId === operation.traceId && s.name === "ledger get_states", "for the batch read");
    expect(ledgerRead.parentSpanId).toBe(operation.spanId);
    expect(ledgerRead.attrs["ledger.profiles"]).toBe(1);
    expect(receiver.spans.some((s) => s.service === ROUTER_SERVICE && s.traceId === operation.traceId)).toBe(true);
  });

  it("records a magic link's Deel calls without the worker token or the link", async () => {
    const linked = await gql<{ createWorkerMagicLink: { magicLink: string } }, unknown>(
      router.url,
      `mutation Link($profileId: ID!) { createWorkerMagicLink(input: { profileId: $profileId, redirectPath: "/contracts/42", onSuccessRedirectUrl: "${APP}/done" }) { magicLink } }`,
      { profileId: profile },
      { token: admin },
    );
    expect(linked.errors).toBeUndefined();
    const link = linked.data?.createWorkerMagicLink.magicLink as string;
    expect(link).toMatch(/^https:\/\//);
    secrets.push(link, new URL(link).search.slice(1));
    const operation = await spanArrives(receiver, (s) => s.service === GATEWAY_SERVICE && s.name === "mutation Link", "for the magic link operation");
    const linkCall = await spanArrives(receiver, (s) => s.traceId === operation.traceId && s.name === "POST /magic-link", "for the magic link call");
    expect(linkCall.attrs).toMatchObject({ "url.template": "/magic-link", "http.response.status_code": 201, "deel.attempt": 1 });
    // The worker token minted for the link (never returned to the caller) is Deel's current one.
    secrets.push(sandbox.state(profile)?.token as string);
  });

  it("numbers the attempts of concurrent calls each from 1, in its own trace", async () => {
    const others = [sandbox.profiles[1] as string, sandbox.profiles[2] as string];
    // Two 503s for two concurrent creates: however they fall, each call retries its own.
    sandbox.injectFault({ kind: "status", status: 503 }, { times: 2, route: "create" });
    const answers = await Promise.all(
      others.map((profileId) =>
        gql<{ createWorkerSession: { token: string } }, unknown>(
          router.url,
          `mutation Twin($profileId: ID!) { createWorkerSession(input: { profileId: $profileId }) { token } }`,
          { profileId },
          { token: admin },
        ),
      ),
    );
    for (const answer of answers) {
      expect(answer.errors).toBeUndefined();
      secrets.push(answer.data?.createWorkerSession.token as string);
    }
    const traces: string[] = [];
    for (let i = 0; i < 300 && traces.length < 2; i += 1) {
      traces.splice(0, traces.length, ...new Set(receiver.spans.filter((s) => s.service === GATEWAY_SERVICE && s.name === "mutation Twin").map((s) => s.traceId)));
      if (traces.length < 2) await sleep(50);
    }
    expect(traces.length).toBe(2);
    let failed = 0;
    for (const traceId of traces) {
      const attempts = await (async () => {
        for (let i = 0; i < 100; i += 1) {
          const found = receiver.spans.filter((s) => s.traceId === traceId && s.name === "POST /workers/session");
          if (found.some((s) => s.attrs["http.response.status_code"] === 201)) return found;
          await sleep(50);
        }
        throw new Error("the successful attempt never arrived");
      })();
      const ordered = attempts.sort((a, b) => Number(a.attrs["deel.attempt"]) - Number(b.attrs["deel.attempt"]));
      expect(ordered.map((s) => s.attrs["deel.attempt"])).toEqual(ordered.map((_, i) => i + 1));
      expect(ordered.map((s) => s.attrs["http.response.status_code"])).toEqual([...ordered.slice(1).map(() => 503), 201]);
      failed += ordered.length - 1;
    }
    expect(failed).toBe(2);
  });

  it("exports no token, link or Authorization header, at any level", async () => {
    // Let the last batch of the gateway leave.
    await sleep(400);
    expect(receiver.contentTypes.every((type) => type.startsWith("application/json"))).toBe(true);
    const exported = receiver.bodies.join("\n");
    expect(exported.length).toBeGreaterThan(0);
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    for (const secret of secrets) expect(exported.includes(secret), "a secret was exported").toBe(false);
    expect(exported).not.toMatch(/bearer/i);
    expect(exported).not.toMatch(/authorization/i);
    expect(exported).not.toContain(ROUTER_SECRET);
    // Nor a concrete Deel path with a profile id: routes are templates.
    const gatewaySpans = receiver.spans.filter((s) => s.service === GATEWAY_SERVICE);
    expect(JSON.stringify(gatewaySpans)).not.toContain(`/workers/${profile}`);
  });
});

describe("Apollo federated tracing (ftv1)", () => {
  const ftv1 = { "apollo-federation-include-trace": "ftv1" };
  const query = `query Probe($profileId: ID!) { workerSession(profileId: $profileId) { status } }`;

  it("answers a router's ftv1 request with extensions.ftv1 when APOLLO_FEDERATED_TRACING is on", async () => {
    const gw = await startTestGateway({ env: { APOLLO_FEDERATED_TRACING: "true" } });
    try {
      const admin = await anAdminToken();
      const profileId = gw.sandbox.profiles[0] as string;
      const traced = await gql(gw.url, query, { profileId }, { token: admin, headers: ftv1 });
      expect(traced.errors).toBeUndefined();
      const extensions = (JSON.parse(traced.raw) as { extensions?: { ftv1?: unknown } }).extensions;
      expect(typeof extensions?.ftv1).toBe("string");
      expect((extensions?.ftv1 as string).length).toBeGreaterThan(10);
      // Only a request that asks for it pays for it.
      const plain = await gql(gw.url, query, { profileId }, { token: admin });
      expect(JSON.parse(plain.raw)).not.toHaveProperty("extensions.ftv1");
    } finally {
      await gw.close();
    }
  });

  it("traces only for the router when ROUTER_SECRET is set: a direct client that asks for ftv1 gets none", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wsg-ftv1-"));
    const manifest = join(dir, "persisted-documents.json");
    writeFileSync(manifest, JSON.stringify({ [`sha256:${createHash("sha256").update(query).digest("hex")}`]: query }));
    const gw = await startTestGateway({
      env: { APOLLO_FEDERATED_TRACING: "true", ROUTER_SECRET, TRUSTED_DOCUMENTS: manifest, ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS: "true" },
    });
    try {
      const admin = await anAdminToken();
      const profileId = gw.sandbox.profiles[0] as string;
      const direct = await gql(gw.url, query, { profileId }, { token: admin, headers: ftv1 });
      expect(direct.status).toBe(200);
      expect(direct.errors).toBeUndefined();
      expect(JSON.parse(direct.raw)).not.toHaveProperty("extensions.ftv1");
      const routed = await gql(gw.url, query, { profileId }, { token: admin, headers: { ...ftv1, "router-authorization": ROUTER_SECRET } });
      expect(routed.errors).toBeUndefined();
      expect(typeof (JSON.parse(routed.raw) as { extensions?: { ftv1?: unknown } }).extensions?.ftv1).toBe("string");
    } finally {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("never answers with ftv1 by default, even when asked", async () => {
    const gw = await startTestGateway();
    try {
      const admin = await anAdminToken();
      const response = await gql(gw.url, query, { profileId: gw.sandbox.profiles[0] as string }, { token: admin, headers: ftv1 });
      expect(response.errors).toBeUndefined();
      expect(JSON.parse(response.raw)).not.toHaveProperty("extensions.ftv1");
    } finally {
      await gw.close();
    }
  });
});
