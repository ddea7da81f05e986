/**
 * Pacing by the moment a request leaves, whatever the event loop does. The BUILT program (`node
 * dist/main.js`) is frozen (SIGSTOP for 700 ms, then SIGCONT) while 50 mutations wait in its Deel
 * budget; timers that were due during the pause all fire at once when it resumes. At the Deel side
 * (the built-in sandbox, its own rate limit off, recording when each request arrives) no rolling
 * second may hold more than `DEEL_RATE_LIMIT_RPS` arrivals, at the default 100 ms margin:
 *
 * - one process, with its in-process budget (memory ledger, then a SQLite ledger);
 * - two processes sharing their budget through each shared backend (SHARED_BACKENDS: Redis, and
 *   PostgreSQL alone, no Redis), one of them frozen.
 *
 * Each test prints the most arrivals it saw in a rolling second (`[pacing] …` on stdout).
 *
 * The pause is timed from what the sandbox saw: it starts 600 ms after a batch of five arrived, so
 * the next batch's slot (a window plus the margin later) falls inside it.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";
import { CreateWorkerMagicLinkDocument, CreateWorkerSessionDocument, RevokeWorkerSessionDocument } from "../generated/operations.js";
import { anAdminToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { codes, gql, type GraphQLResponse } from "../support/gateway.js";
import { startGatewayProcess, type GatewayProcess } from "../support/process.js";
import { SHARED_BACKENDS } from "../support/shared-backends.js";
import { maxInAnyWindow } from "../support/windows.js";

const RPS = 5;
const MUTATIONS = 50;
const PAUSE_MS = 700;

function env(sandbox: DeelSandbox, store: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    PORT: "0",
    SESSION_STORE_URL: store,
    DEEL_API_URL: sandbox.url,
    DEEL_API_TOKEN: sandbox.orgToken,
    DEEL_RATE_LIMIT_RPS: String(RPS),
    // The default margin (100 ms): the bound must hold without raising it.
    // Room for ~60 calls queued behind 5 per 1.1 s; every mutation is expected to succeed.
    DEEL_TIMEOUT_MS: "40000",
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    CALLER_MUTATIONS_PER_MINUTE: "0",
    MAGIC_LINK_REDIRECT_ORIGINS: "https://app.example.com",
    LOG_LEVEL: "info",
    SHUTDOWN_GRACE_MS: "2000",
    ...extra,
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves once the sandbox has seen `count` requests since `from` (bounded in time). */
async function arrivals(sandbox: DeelSandbox, from: number, count: number, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (sandbox.requests.length - from < count) {
    if (Date.now() > until) throw new Error(`the sandbox saw ${sandbox.requests.length - from} of ${count} requests in ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** Freezes the process for `ms`, then lets it run on. */
async function freeze(gateway: GatewayProcess, ms: number): Promise<void> {
  gateway.child.kill("SIGSTOP");
  try {
    await sleep(ms);
  } finally {
    gateway.child.kill("SIGCONT");
  }
}

/**
 * 50 mutations (creates, revokes, magic links: 60 Deel calls) spread over `gateways`; `pauseOf`
 * is frozen twice, each time 600 ms after a batch of five reached Deel. Returns the answers and the
 * arrival times of the Deel requests they made.
 */
async function burstWithPauses(sandbox: DeelSandbox, gateways: GatewayProcess[], pauseOf: GatewayProcess, admin: string) {
  // Each process's first Deel call opens its connection (and warms its code): on a loaded host that
  // can take longer than the margin, which measures the host's cold start, not pacing under a pause.
  // One create each, on profiles the burst does not use, then a full window (and margin) of quiet.
  for (const [i, gw] of gateways.entries()) {
    const warmUp = await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId: sandbox.profiles[MUTATIONS + i]!, idempotencyKey: null } }, { token: admin });
    expect(codes(warmUp), warmUp.raw).toEqual([]);
  }
  await sleep(1200);
  const from = sandbox.requests.length;
  const profiles = sandbox.profiles.slice(0, MUTATIONS);
  const results: Array<Promise<GraphQLResponse<unknown>>> = profiles.map((profileId, i) => {
    const gw = gateways[i % gateways.length]!;
    if (i % 5 === 3) return gql(gw.url, RevokeWorkerSessionDocument, { input: { profileId } }, { token: admin });
    if (i % 5 === 4) {
      const input = { profileId, redirectPath: "/onboarding", onSuccessRedirectUrl: "https://app.example.com/done", idempotencyKey: `ml-${i}` };
      return gql(gw.url, CreateWorkerMagicLinkDocument, { input }, { token: admin });
    }
    return gql(gw.url, CreateWorkerSessionDocument, { input: { profileId, idempotencyKey: null } }, { token: admin });
  });
  for (const seen of [RPS, 4 * RPS]) {
    await arrivals(sandbox, from, seen);
    const batchAt = sandbox.requests[from + seen - 1]!.at;
    await sleep(Math.max(0, batchAt + 600 - Date.now()));
    await freeze(pauseOf, PAUSE_MS);
  }
  const answers = await Promise.all(results);
  return { answers, times: sandbox.requests.slice(from).map((r) => r.at) };
}

function expectPaced(answers: Array<GraphQLResponse<unknown>>, times: number[]): void {
  for (const [i, answer] of answers.entries()) expect(codes(answer), `mutation #${i}: ${answer.raw}`).toEqual([]);
  // 30 creates + 10 revokes + 10 × (create + link).
  expect(times).toHaveLength(60);
  const most = maxInAnyWindow(times, 1000);
  process.stdout.write(`[pacing] ${expect.getState().currentTestName ?? ""}: at most ${most} arrivals in a rolling second\n`);
  expect(most).toBeLessThanOrEqual(RPS);
}

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe("one frozen process paces by departures (in-process budget)", () => {
  let sandbox: DeelSandbox;
  let admin: string;

  beforeAll(async () => {
    sandbox = await startDeelSandbox({ rateLimitRps: 0, profiles: Array.from({ length: MUTATIONS + 2 }, () => randomUUID()) });
    cleanups.push(() => sandbox.close());
    admin = await anAdminToken("pacing-admin");
  });

  for (const [name, store] of [
    ["memory ledger", () => "memory:"],
    ["SQLite ledger", () => `sqlite:${join(mkdtempSync(join(tmpdir(), "wsg-pacing-")), "ledger.db")}`],
  ] as const) {
    it(`${name}: at most ${RPS} arrivals in any rolling second across two 700 ms freezes`, async () => {
      sandbox.reset();
      const gateway = await startGatewayProcess(env(sandbox, store()));
      cleanups.push(() => gateway.stop("SIGKILL"));
      const { answers, times } = await burstWithPauses(sandbox, [gateway], gateway, admin);
      expectPaced(answers, times);
      await gateway.stop("SIGTERM");
    }, 60_000);
  }
});

for (const backend of SHARED_BACKENDS) {
  backend.describe(`two processes sharing one budget on ${backend.name}, one of them frozen`, () => {
    let sandbox: DeelSandbox;
    let admin: string;

    beforeAll(async () => {
      sandbox = await startDeelSandbox({ rateLimitRps: 0, profiles: Array.from({ length: MUTATIONS + 2 }, () => randomUUID()) });
      cleanups.push(() => sandbox.close());
      admin = await anAdminToken("pacing-admin");
    });

    it(`at most ${RPS} arrivals in any rolling second across two 700 ms freezes of one replica`, async () => {
      const namespace = backend.namespace("pacing");
      cleanups.push(() => namespace.cleanup());
      const [a, b] = await Promise.all([startGatewayProcess(env(sandbox, namespace.env.SESSION_STORE_URL!, namespace.env)), startGatewayProcess(env(sandbox, namespace.env.SESSION_STORE_URL!, namespace.env))]);
      cleanups.push(() => a.stop("SIGKILL"), () => b.stop("SIGKILL"));
      const { answers, times } = await burstWithPauses(sandbox, [a, b], a, admin);
      expectPaced(answers, times);
    }, 60_000);
  });
}
