/**
 * The kill switch against mints it cannot see in the ledger yet, on the BUILT program: a create by
 * the leaked caller already waiting on Deel when the job starts (SQLite, and two replicas on one
 * Redis, with both filters), a create whose answer was lost (UNKNOWN) when a `createdBy` job starts,
 * and five jobs started at once on the same profiles. Timings are printed (`[kill-switch]` lines),
 * never asserted.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Scope } from "../../src/auth/caller.js";
import { startDeelSandbox, type DeelSandbox, type SandboxOptions } from "../../src/deel/sandbox/server.js";
import {
  CreateWorkerSessionDocument,
  RevocationJobDocument,
  RevokeWorkerSessionsDocument,
  WorkerSessionDocument,
  type RevocationJobFieldsFragment,
  type RevokeWorkerSessionsInput,
} from "../generated/operations.js";
import { aCallerToken, anAdminToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { gql } from "../support/gateway.js";
import { startGatewayProcess, type GatewayProcess } from "../support/process.js";
import { deletePrefix, describeRedis, REDIS_URL, uniquePrefix } from "../support/redis.js";

const LEAKED = "svc-leaked";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function aSandbox(options: SandboxOptions): Promise<DeelSandbox> {
  const sandbox = await startDeelSandbox(options);
  cleanups.push(() => sandbox.close());
  return sandbox;
}

function envFor(sandbox: DeelSandbox, store: Record<string, string>, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    PORT: "0",
    DEEL_API_URL: sandbox.url,
    DEEL_API_TOKEN: sandbox.orgToken,
    DEEL_TIMEOUT_MS: "5000",
    DEEL_RATE_LIMIT_RPS: "0",
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    CALLER_MUTATIONS_PER_MINUTE: "0",
    SHUTDOWN_GRACE_MS: "2000",
    ...store,
    ...extra,
  };
}

function sqliteStore(): Record<string, string> {
  return { SESSION_STORE_URL: `sqlite:${join(mkdtempSync(join(tmpdir(), "wsg-in-flight-")), "ledger.db")}` };
}

function redisStore(): Record<string, string> {
  const prefix = uniquePrefix("inflight");
  cleanups.push(() => deletePrefix(prefix));
  return { SESSION_STORE_URL: REDIS_URL, REDIS_KEY_PREFIX: prefix };
}

async function aGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const gateway = await startGatewayProcess(env);
  cleanups.push(() => gateway.stop("SIGKILL"));
  return gateway;
}

const leakedToken = () => aCallerToken({ sub: LEAKED, scopes: [Scope.create, Scope.read, Scope.allProfiles] });

async function startJob(url: string, input: RevokeWorkerSessionsInput, operator: string): Promise<RevocationJobFieldsFragment> {
  const started = await gql(url, RevokeWorkerSessionsDocument, { input }, { token: operator });
  expect(started.errors).toBeUndefined();
  return started.data!.revokeWorkerSessions;
}

/** Polls until the job is no longer RUNNING, for at most 600 polls of 50 ms. */
async function untilFinished(url: string, id: string, operator: string): Promise<RevocationJobFieldsFragment> {
  for (let polls = 0; polls < 600; polls += 1) {
    const job = (await gql(url, RevocationJobDocument, { id }, { token: operator })).data?.revocationJob;
    if (job === null || job === undefined) throw new Error(`revocation job ${id} is unknown`);
    if (job.status !== "RUNNING") return job;
    await sleep(50);
  }
  throw new Error(`revocation job ${id} still RUNNING after 600 polls`);
}

/**
 * A create by the leaked caller is waiting on Deel (1.5 s latency) on `creator` when the job starts
 * on `operatorSide`: the job must not be DONE before the token that create mints is revoked.
 */
async function inFlightCase(label: string, sandbox: DeelSandbox, creator: GatewayProcess, operatorSide: GatewayProcess, filter: "createdBy" | "profileIds"): Promise<void> {
  const operator = await anAdminToken("incident-operator");
  const profileId = sandbox.profiles[0] as string;
  const t0 = Date.now();
  const posts = () => sandbox.requests.filter((r) => r.method === "POST").length;
  const creating = gql(creator.url, CreateWorkerSessionDocument, { input: { profileId, idempotencyKey: null } }, { token: await leakedToken() });
  // The create is waiting on Deel's answer (1.5 s away).
  for (let i = 0; i < 200 && posts() === 0; i += 1) await sleep(10);
  expect(posts()).toBe(1);

  const job = await startJob(operatorSide.url, filter === "createdBy" ? { createdBy: LEAKED } : { profileIds: [profileId] }, operator);
  const jobStarted = Date.now();
  const finishedPromise = untilFinished(operatorSide.url, job.id, operator).then((finished) => ({ finished, at: Date.now() }));
  const created = await creating;
  const createAnswered = Date.now();
  const { finished, at: doneAt } = await finishedPromise;
  console.log(
    `[kill-switch] in-flight create, ${label}, ${filter}: job started ${jobStarted - t0} ms after the create, ` +
      `create answered +${createAnswered - jobStarted} ms (${created.errors === undefined ? "a token" : "an error"}), job ${finished.status} +${doneAt - jobStarted} ms, total ${finished.total}`,
  );

  expect(finished).toMatchObject({ status: "DONE", total: 1, revoked: 1, failed: 0 });
  // Whatever the create answered, no token it minted is live at Deel, and the ledger says so.
  expect(sandbox.state(profileId)?.revoked).toBe(true);
  const read = await gql(operatorSide.url, WorkerSessionDocument, { profileId }, { token: operator });
  expect(read.data?.workerSession).toMatchObject({ status: "REVOKED", createdBy: LEAKED, revokedBy: "incident-operator" });
}

describe("the kill switch and a create in flight, on SQLite", () => {
  for (const filter of ["createdBy", "profileIds"] as const) {
    it(`(${filter}) is DONE only after the token the create was waiting for is revoked at Deel and REVOKED in the ledger`, async () => {
      const sandbox = await aSandbox({ latencyMs: 1500, rateLimitRps: 0 });
      const gateway = await aGateway(envFor(sandbox, sqliteStore()));
      await inFlightCase("SQLite", sandbox, gateway, gateway, filter);
    }, 60_000);
  }
});

describeRedis("the kill switch and a create in flight, on two replicas and one Redis", () => {
  for (const filter of ["createdBy", "profileIds"] as const) {
    it(`(${filter}) started on replica B while A's create waits on Deel: DONE only after that token is revoked`, async () => {
      const sandbox = await aSandbox({ latencyMs: 1500, rateLimitRps: 0 });
      const store = redisStore();
      const [a, b] = await Promise.all([aGateway(envFor(sandbox, store)), aGateway(envFor(sandbox, store))]);
      await inFlightCase("Redis, two replicas", sandbox, a, b, filter);
    }, 60_000);
  }
});

describe("the kill switch and a lost mint (UNKNOWN)", () => {
  it("a createdBy job revokes the token whose answer was lost when the replica minting it died", async () => {
    const sandbox = await aSandbox({ latencyMs: 1500, rateLimitRps: 0 });
    const env = envFor(sandbox, sqliteStore(), { DEEL_TIMEOUT_MS: "3000" });
    const a = await aGateway(env);
    const b = await aGateway(env);
    const operator = await anAdminToken("incident-operator");
    const profileId = sandbox.profiles[0] as string;

    const cutOff = gql(a.url, CreateWorkerSessionDocument, { input: { profileId } }, { token: await leakedToken() }).catch((error: unknown) => error);
    for (let i = 0; i < 300 && sandbox.requests.length === 0; i += 1) await sleep(10);
    await a.stop("SIGKILL");
    expect(await cutOff).toBeInstanceOf(Error);
    for (let i = 0; i < 100 && sandbox.state(profileId) === undefined; i += 1) await sleep(50);
    expect(sandbox.state(profileId)?.revoked).toBe(false);
    let status: unknown;
    for (let i = 0; i < 100 && status !== "UNKNOWN"; i += 1) {
      status = (await gql(b.url, WorkerSessionDocument, { profileId }, { token: operator })).data?.workerSession?.status;
      if (status !== "UNKNOWN") await sleep(100);
    }
    expect(status).toBe("UNKNOWN");

    const job = await startJob(b.url, { createdBy: LEAKED }, operator);
    expect(job.total).toBe(1);
    expect(await untilFinished(b.url, job.id, operator)).toMatchObject({ status: "DONE", total: 1, revoked: 1 });
    expect(sandbox.state(profileId)?.revoked).toBe(true);
    const read = await gql(b.url, WorkerSessionDocument, { profileId }, { token: operator });
    expect(read.data?.workerSession).toMatchObject({ status: "REVOKED", createdBy: LEAKED });
  }, 60_000);
});

/** Ten sessions by the leaked caller, then five jobs on those ten profiles started at once across `gateways`. */
async function fiveJobs(label: string, sandbox: DeelSandbox, gateways: readonly GatewayProcess[]): Promise<void> {
  const operator = await anAdminToken("incident-operator");
  const leaked = await leakedToken();
  const profiles = sandbox.profiles.slice(0, 10);
  const minted = await Promise.all(profiles.map((profileId) => gql(gateways[0]!.url, CreateWorkerSessionDocument, { input: { profileId } }, { token: leaked })));
  expect(minted.map((r) => r.errors)).toEqual(minted.map(() => undefined));

  const jobs = await Promise.all(Array.from({ length: 5 }, (_, i) => startJob(gateways[i % gateways.length]!.url, { profileIds: [...profiles] }, operator)));
  const finished = await Promise.all(jobs.map((job) => untilFinished(gateways[0]!.url, job.id, operator)));
  const deletes = sandbox.requests.filter((r) => r.method === "DELETE").length;
  console.log(`[kill-switch] five concurrent jobs on the same ten profiles, ${label}: ${deletes} DELETEs at Deel`);

  for (const job of finished) expect(job).toMatchObject({ status: "DONE", total: 10, revoked: 10, failed: 0 });
  expect(deletes).toBe(10);
  for (const profileId of profiles) expect(sandbox.state(profileId)?.revoked, profileId).toBe(true);
}

describe("five revocation jobs at once on the same profiles, on SQLite", () => {
  it("send one DELETE per profile, each job DONE with all ten revoked", async () => {
    const sandbox = await aSandbox({ rateLimitRps: 5, profiles: Array.from({ length: 10 }, () => randomUUID()) });
    const gateway = await aGateway(envFor(sandbox, sqliteStore(), { DEEL_RATE_LIMIT_RPS: "5", DEEL_TIMEOUT_MS: "20000" }));
    await fiveJobs("SQLite", sandbox, [gateway]);
  }, 60_000);
});

describeRedis("five revocation jobs at once on the same profiles, on two replicas and one Redis", () => {
  it("send one DELETE per profile, each job DONE with all ten revoked", async () => {
    const sandbox = await aSandbox({ rateLimitRps: 5, profiles: Array.from({ length: 10 }, () => randomUUID()) });
    const store = redisStore();
    const env = envFor(sandbox, store, { DEEL_RATE_LIMIT_RPS: "5", DEEL_TIMEOUT_MS: "20000" });
    const gateways = await Promise.all([aGateway(env), aGateway(env)]);
    await fiveJobs("Redis, two replicas", sandbox, gateways);
  }, 60_000);
});
