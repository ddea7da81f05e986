/**
 * The session history end to end, on each backend a deployment can share (a SQLite file, Redis,
 * PostgreSQL alone): two built gateway processes in front of the Deel sandbox, one profile taken
 * through a mint, a replay, a magic link, a revoke by hand, a refused revoke, a revoke by a
 * revocation job, and a mint whose answer is lost (the process minting it is SIGKILLed), then a
 * revoke that resolves it. The survivor's history must list every event, newest first, with its
 * actor, outcome, request ids and job, and hold no token or link; it pages by cursor, refuses bad
 * paging input and callers without the audit scope or the profile, reads one page of many
 * `_entities` representations in one store read, and answers the same through two routers.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Scope } from "../../src/auth/caller.js";
import { startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";
import {
  CreateWorkerMagicLinkDocument,
  CreateWorkerSessionDocument,
  RevocationJobDocument,
  RevocationJobEventsDocument,
  RevokeWorkerSessionDocument,
  RevokeWorkerSessionsDocument,
  WorkerSessionHistoryDocument,
  type WorkerSessionEventFieldsFragment,
} from "../generated/operations.js";
import { aCallerToken, anAdminToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { codes, gql } from "../support/gateway.js";
import { startGatewayProcess, type GatewayProcess } from "../support/process.js";
import { SHARED_BACKENDS, type SharedBackend, type SharedNamespace } from "../support/shared-backends.js";
import { composeSupergraph, startApolloGatewayRouter, startHiveGatewayRouter, startHrSubgraph } from "../support/supergraph.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A SQLite file, shared by the two processes on one host. */
const sqliteFile: SharedBackend = {
  name: "a SQLite file",
  describe,
  namespace: () => {
    const dir = mkdtempSync(join(tmpdir(), "wsg-history-"));
    return { env: { SESSION_STORE_URL: `sqlite:${join(dir, "ledger.db")}` }, ledger: () => Promise.reject(new Error("not used")), cleanup: async () => undefined };
  },
};

type Event = WorkerSessionEventFieldsFragment;

/** What the profile went through, newest first, as the history must tell it (action outcome). */
const EXPECTED = [
  // A revoke ends the lost mint: its intent resolved, its session recorded REVOKED; the UNKNOWN stays told.
  "INTENT_RESOLVED OK",
  "REVOKE OK",
  // The lost mint: written by the process that died, UNKNOWN once no create could still be waiting.
  "INTENT_UNKNOWN UNKNOWN",
  "INTENT_WRITTEN OK",
  // The revocation job.
  "JOB_REVOKE OK",
  // A fresh mint for the job to revoke.
  "INTENT_RESOLVED OK",
  "MINT OK",
  "INTENT_WRITTEN OK",
  // A revoke Deel refused (NOT_FOUND): a refusal that reached the service.
  "REVOKE NOT_FOUND",
  // The revoke by hand.
  "REVOKE OK",
  // The magic link: a fresh mint, then the link.
  "MAGIC_LINK OK",
  "INTENT_RESOLVED OK",
  "MINT OK",
  "INTENT_WRITTEN OK",
  // The replay of the first mint (same caller, same idempotency key).
  "REPLAY OK",
  "INTENT_RESOLVED OK",
  "INTENT_WRITTEN OK",
  // The first mint.
  "INTENT_RESOLVED OK",
  "MINT OK",
  "INTENT_WRITTEN OK",
];

/** Every `wsg_store_reads_total{op="history"}` the process counted. */
async function historyReads(gatewayUrl: string): Promise<number> {
  const response = await request(new URL("/metrics", gatewayUrl));
  const text = await response.body.text();
  const line = /^wsg_store_reads_total\{op="history"\} (\d+)/m.exec(text);
  return line === null ? 0 : Number(line[1]);
}

const ENTITIES = `query Entities($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on Worker { profileId sessionHistory(first: 3) { edges { node { action actor } } pageInfo { hasNextPage } } }
  }
}`;

for (const backend of [sqliteFile, ...SHARED_BACKENDS]) backend.describe(`the session history on ${backend.name}`, () => {
  let sandbox: DeelSandbox;
  let namespace: SharedNamespace;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let admin: string;
  let profile: string;
  let other: string;
  let jobId: string;
  const secrets: string[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    sandbox = await startDeelSandbox({ rateLimitRps: 0 });
    cleanups.push(() => sandbox.close());
    namespace = backend.namespace("history");
    cleanups.push(() => namespace.cleanup());
    const env = {
      HOST: "127.0.0.1",
      PORT: "0",
      DEEL_API_URL: sandbox.url,
      DEEL_API_TOKEN: sandbox.orgToken,
      DEEL_TIMEOUT_MS: "3000",
      DEEL_RATE_LIMIT_RPS: "0",
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      AUTH_ISSUER: TEST_ISSUER,
      AUTH_AUDIENCE: TEST_AUDIENCE,
      CALLER_MUTATIONS_PER_MINUTE: "100000",
      ...namespace.env,
    };
    a = await startGatewayProcess(env);
    cleanups.push(() => a.stop("SIGKILL"));
    b = await startGatewayProcess(env);
    cleanups.push(() => b.stop("SIGTERM"));
    admin = await anAdminToken("operator");
    profile = sandbox.profiles[0] as string;
    other = sandbox.profiles[1] as string;
  }, 60_000);
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  async function history(url: string, profileId: string, first = 100, after?: string) {
    const response = await gql(url, WorkerSessionHistoryDocument, { profileId, first, ...(after === undefined ? {} : { after }) }, { token: admin });
    expect(response.errors).toBeUndefined();
    for (const secret of secrets) expect(response.raw).not.toContain(secret);
    return { page: response.data?.workerSessionHistory, raw: response.raw };
  }

  it("tells a mint, a replay, a magic link, revokes by hand and by a job, and a lost mint, newest first, without a token or a link", async () => {
    const key = "history-first-mint";
    const first = await gql(a.url, CreateWorkerSessionDocument, { input: { profileId: profile, idempotencyKey: key } }, { token: admin });
    expect(first.errors).toBeUndefined();
    secrets.push(first.data?.createWorkerSession.token as string);
    const replay = await gql(a.url, CreateWorkerSessionDocument, { input: { profileId: profile, idempotencyKey: key } }, { token: admin });
    expect(replay.errors).toBeUndefined();
    expect(replay.data?.createWorkerSession.token).toBe(secrets[0]);

    const link = await gql(a.url, CreateWorkerMagicLinkDocument, { input: { profileId: profile, redirectPath: "/contracts/42" } }, { token: admin });
    expect(link.errors).toBeUndefined();
    const magicLink = link.data?.createWorkerMagicLink.magicLink as string;
    secrets.push(magicLink, ...[new URL(magicLink).search.slice(1)].filter((part) => part.length > 8));

    expect((await gql(a.url, RevokeWorkerSessionDocument, { input: { profileId: profile } }, { token: admin })).errors).toBeUndefined();
    sandbox.injectFault({ kind: "status", status: 404 }, { times: 1, route: "revoke" });
    expect(codes(await gql(b.url, RevokeWorkerSessionDocument, { input: { profileId: profile } }, { token: admin }))).toEqual(["NOT_FOUND"]);

    const again = await gql(b.url, CreateWorkerSessionDocument, { input: { profileId: profile } }, { token: admin });
    expect(again.errors).toBeUndefined();
    secrets.push(again.data?.createWorkerSession.token as string);
    const job = await gql(b.url, RevokeWorkerSessionsDocument, { input: { profileIds: [profile] } }, { token: admin });
    expect(job.errors).toBeUndefined();
    jobId = job.data?.revokeWorkerSessions.id as string;
    let status: string | undefined;
    for (let i = 0; i < 200 && status !== "DONE"; i += 1) {
      const read = await gql(b.url, RevocationJobDocument, { id: jobId }, { token: admin });
      status = read.data?.revocationJob?.status;
      if (status !== "DONE") await sleep(50);
    }
    expect(status).toBe("DONE");

    // The lost mint: A is killed while Deel takes 1.5 s to mint; Deel keeps the token no answer carried.
    sandbox.setLatency(1500);
    const asked = sandbox.requests.length;
    const cutOff = gql(a.url, CreateWorkerSessionDocument, { input: { profileId: profile } }, { token: admin }).catch((error: unknown) => error);
    while (sandbox.requests.length === asked) await sleep(10);
    await a.stop("SIGKILL");
    expect(await cutOff).toBeInstanceOf(Error);
    sandbox.setLatency(0);

    // B's history tells INTENT_UNKNOWN once reads answer UNKNOWN (the Deel deadline and a second after the mint began).
    let newest: Event | undefined;
    for (let i = 0; i < 150 && newest?.action !== "INTENT_UNKNOWN"; i += 1) {
      newest = (await history(b.url, profile)).page?.edges[0]?.node;
      if (newest?.action !== "INTENT_UNKNOWN") await sleep(100);
    }
    expect(newest).toMatchObject({ action: "INTENT_UNKNOWN", outcome: "UNKNOWN", actor: "operator", profileId: profile });

    const resolved = await gql(b.url, RevokeWorkerSessionDocument, { input: { profileId: profile } }, { token: admin });
    expect(resolved.data?.revokeWorkerSession.session).toMatchObject({ status: "REVOKED", createdBy: "operator", revokedBy: "operator" });

    const { page, raw } = await history(b.url, profile);
    const events = page?.edges.map((edge) => edge.node) ?? [];
    expect(events.map((event) => `${event.action} ${event.outcome}`)).toEqual(EXPECTED);
    expect(page?.pageInfo).toEqual({ hasNextPage: false, endCursor: page?.edges.at(-1)?.cursor });
    // Newest first, every event of this profile, by this operator, each with a distinct id.
    const times = events.map((event) => Date.parse(event.at));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
    for (const event of events) {
      expect(event).toMatchObject({ profileId: profile, actor: "operator" });
      expect(event.requestId).not.toBe("");
    }
    // The job's revoke names the job, in its request id too; no other event names a job.
    const byJob = events.filter((event) => event.jobId !== null);
    expect(byJob).toEqual([expect.objectContaining({ action: "JOB_REVOKE", jobId, requestId: `revocation-job:${jobId}` })]);
    // The lost mint's events carry the request of the process that died; the revoke after it, B's.
    const [resolvedEvent, revokeEvent, unknownEvent, writtenEvent] = events;
    expect(unknownEvent?.requestId).toBe(writtenEvent?.requestId);
    expect(revokeEvent?.requestId).toBe(resolvedEvent?.requestId);
    expect(revokeEvent?.requestId).not.toBe(unknownEvent?.requestId);
    // The refused revoke carries Deel's request id when Deel's error named one; the history never holds a secret.
    expect(secrets.every((secret) => secret.length > 8)).toBe(true);
    for (const secret of secrets) expect(raw).not.toContain(secret);

    // The job's events: its one revoke.
    const jobEvents = await gql(b.url, RevocationJobEventsDocument, { id: jobId }, { token: admin });
    expect(jobEvents.errors).toBeUndefined();
    expect(jobEvents.data?.revocationJob?.events.edges.map((edge) => edge.node)).toEqual([byJob[0]]);
  }, 120_000);

  it("pages newest first by cursor, and refuses a bad first or after with BAD_USER_INPUT", async () => {
    const whole = (await history(b.url, profile)).page?.edges.map((edge) => edge.node.id) ?? [];
    const paged: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 20; pages += 1) {
      const { page } = await history(b.url, profile, 6, after);
      paged.push(...(page?.edges.map((edge) => edge.node.id) ?? []));
      expect(page?.pageInfo.endCursor).toBe(page?.edges.at(-1)?.cursor ?? null);
      if (!page?.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor ?? undefined;
    }
    expect(paged).toEqual(whole);
    expect(paged).toHaveLength(EXPECTED.length);

    for (const variables of [{ first: 0 }, { first: 101 }, { first: -1 }, { after: "not-a-cursor" }, { after: Buffer.from("0001234567890").toString("base64url") }]) {
      const response = await gql(b.url, WorkerSessionHistoryDocument, { profileId: profile, ...variables }, { token: admin });
      expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
      expect(response.data).toBeNull();
    }
    expect(codes(await gql(b.url, WorkerSessionHistoryDocument, { profileId: "not-a-uuid" }, { token: admin }))).toEqual(["BAD_USER_INPUT"]);
    // The default page is 20 events.
    const byDefault = await gql(b.url, WorkerSessionHistoryDocument, { profileId: profile }, { token: admin });
    expect(byDefault.data?.workerSessionHistory.edges).toHaveLength(Math.min(20, EXPECTED.length));
  });

  it("is denied without the audit scope, on a profile the caller may not reach, and anonymously", async () => {
    const reader = await aCallerToken({ sub: "reader", scopes: [Scope.read, Scope.create, Scope.revoke, Scope.allProfiles] });
    const auditorElsewhere = await aCallerToken({ sub: "auditor", scopes: [Scope.audit], profiles: [other] });
    const auditorHere = await aCallerToken({ sub: "auditor", scopes: [Scope.audit], profiles: [profile] });
    expect(codes(await gql(b.url, WorkerSessionHistoryDocument, { profileId: profile }, { token: reader }))).toEqual(["FORBIDDEN"]);
    expect(codes(await gql(b.url, WorkerSessionHistoryDocument, { profileId: profile }, { token: auditorElsewhere }))).toEqual(["FORBIDDEN"]);
    expect(codes(await gql(b.url, WorkerSessionHistoryDocument, { profileId: profile }))).toEqual(["UNAUTHENTICATED"]);
    const allowed = await gql(b.url, WorkerSessionHistoryDocument, { profileId: profile, first: 1 }, { token: auditorHere });
    expect(allowed.errors).toBeUndefined();
    expect(allowed.data?.workerSessionHistory.edges).toHaveLength(1);
    // A job's events span profiles: the audit scope and all_profiles, beside the revoke scope that reads the job.
    const jobReader = await aCallerToken({ sub: "job-reader", scopes: [Scope.revoke, Scope.allProfiles] });
    const job = await gql(b.url, RevocationJobEventsDocument, { id: jobId }, { token: jobReader });
    expect(codes(job)).toEqual(["FORBIDDEN"]);
    expect(job.errors?.[0]?.path).toEqual(["revocationJob", "events"]);
  });

  it("reads the history of many _entities representations in one store read", async () => {
    const representations = [...sandbox.profiles, profile, profile].map((profileId) => ({ __typename: "Worker", profileId }));
    const before = await historyReads(b.url);
    const response = await gql(b.url, ENTITIES, { representations }, { token: admin });
    expect(response.errors).toBeUndefined();
    expect(await historyReads(b.url)).toBe(before + 1);
    const entities = (response.data as { _entities: Array<{ profileId: string; sessionHistory: { edges: Array<{ node: { action: string } }>; pageInfo: { hasNextPage: boolean } } }> })._entities;
    expect(entities).toHaveLength(representations.length);
    expect(entities[0]?.sessionHistory.edges.map((edge) => edge.node.action)).toEqual(EXPECTED.slice(0, 3).map((line) => line.split(" ")[0]));
    expect(entities[0]?.sessionHistory.pageInfo.hasNextPage).toBe(true);
    expect(entities[1]?.sessionHistory).toEqual({ edges: [], pageInfo: { hasNextPage: false } });
    // A second page of the workers is another read, one for all of them again.
    await gql(b.url, ENTITIES, { representations }, { token: admin });
    expect(await historyReads(b.url)).toBe(before + 2);
  });

  it("answers the same through @apollo/gateway and Hive Gateway, as Worker.sessionHistory", async () => {
    const hr = await startHrSubgraph(new Map([[profile, "Ada"], [other, "Grace"]]));
    try {
      const supergraph = composeSupergraph({ hr: hr.url, workerSessions: b.url });
      const direct = (await history(b.url, profile, 5)).page?.edges.map((edge) => edge.node);
      const query = `query Team { workers { profileId name sessionHistory(first: 5) { edges { cursor node { id action outcome actor requestId deelRequestId jobId at profileId } } pageInfo { hasNextPage endCursor } } } }`;
      for (const start of [startApolloGatewayRouter, startHiveGatewayRouter]) {
        const router = await start(supergraph);
        try {
          const response = await gql(router.url, query, {}, { token: admin });
          expect(response.errors).toBeUndefined();
          const workers = (response.data as { workers: Array<{ profileId: string; name: string; sessionHistory: { edges: Array<{ node: Event }>; pageInfo: { hasNextPage: boolean } } }> }).workers;
          expect(workers.map((worker) => worker.name)).toEqual(["Ada", "Grace"]);
          expect(workers[0]?.sessionHistory.edges.map((edge) => edge.node)).toEqual(direct);
          expect(workers[0]?.sessionHistory.pageInfo.hasNextPage).toBe(true);
          expect(workers[1]?.sessionHistory.edges).toEqual([]);
          // Without the audit scope the router's answer carries the subgraph's refusal.
          const reader = await aCallerToken({ sub: "reader", scopes: [Scope.read, Scope.allProfiles] });
          const denied = await gql(router.url, query, {}, { token: reader });
          expect(codes(denied)).toContain("FORBIDDEN");
        } finally {
          await router.stop();
        }
      }
    } finally {
      await hr.stop();
    }
  }, 60_000);
});
