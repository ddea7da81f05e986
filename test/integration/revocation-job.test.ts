/**
 * The kill switch over HTTP, on one gateway in front of a sandbox that enforces Deel's 5 requests per
 * second (`DEEL_RATE_LIMIT_RPS=5`): a caller's 20 sessions revoked by one job, paced, with progress
 * readable and creates refused while it runs; and the rules of both operations.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Scope } from "../../src/auth/caller.js";
import { unfenced } from "../../src/sessions/fencing.js";
import {
  CreateWorkerSessionDocument,
  RevocationJobDocument,
  RevokeWorkerSessionsDocument,
  WorkerSessionDocument,
  type RevocationJobFieldsFragment,
  type RevokeWorkerSessionsInput,
} from "../generated/operations.js";
import { aCallerToken, anAdminToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type TestGateway } from "../support/gateway.js";

const create = (gw: TestGateway, profileId: string, token: string) =>
  gql(gw.url, CreateWorkerSessionDocument, { input: { profileId, idempotencyKey: null } }, { token });
const startJob = (gw: TestGateway, input: RevokeWorkerSessionsInput, token: string) => gql(gw.url, RevokeWorkerSessionsDocument, { input }, { token });
const readJob = (gw: TestGateway, id: string, token: string) => gql(gw.url, RevocationJobDocument, { id }, { token });

/** Polls the job until it is no longer RUNNING; resolves to the job as it ended. */
async function untilFinished(gw: TestGateway, id: string, token: string): Promise<RevocationJobFieldsFragment> {
  for (;;) {
    const job = (await readJob(gw, id, token)).data?.revocationJob;
    if (job === null || job === undefined) throw new Error(`revocation job ${id} is unknown`);
    if (job.status !== "RUNNING") return job;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("a revocation job on one gateway, against a sandbox enforcing 5 requests per second", () => {
  const profiles = Array.from({ length: 24 }, () => randomUUID());
  const leakedProfiles = profiles.slice(0, 20);
  const [otherCallersProfile, afterwards, bystander] = profiles.slice(20) as [string, string, string];
  let gw: TestGateway;
  let operator: string;
  let leaked: string;
  let colleague: string;

  beforeAll(async () => {
    gw = await startTestGateway({
      sandbox: { rateLimitRps: 5, profiles },
      // Room for 20 creates queued behind the 5 rps budget.
      env: { DEEL_RATE_LIMIT_RPS: "5", DEEL_TIMEOUT_MS: "20000" },
      logLevel: "info",
    });
    operator = await anAdminToken("incident-operator");
    leaked = await aCallerToken({ sub: "svc-leaked", scopes: [Scope.create, Scope.read, Scope.allProfiles] });
    colleague = await aCallerToken({ sub: "svc-colleague", scopes: [Scope.create, Scope.read, Scope.allProfiles] });
    const minted = await Promise.all([...leakedProfiles.map((p) => create(gw, p, leaked)), create(gw, otherCallersProfile, colleague)]);
    expect(minted.map((r) => r.errors)).toEqual(minted.map(() => undefined));
  }, 40_000);
  afterAll(() => gw?.close());

  it("revokes every session the caller minted, paced without a 429, refusing creates for its profiles and by that caller until DONE", async () => {
    const deletesBefore = gw.sandbox.count({ method: "DELETE" });
    const started = await startJob(gw, { createdBy: "svc-leaked" }, operator);
    expect(started.errors).toBeUndefined();
    const job = started.data!.revokeWorkerSessions;
    expect(job).toMatchObject({ status: "RUNNING", total: 20, failed: 0, requestedBy: "incident-operator", createdBy: "svc-leaked", onlyActive: true, finishedAt: null });

    // While it runs: a create for a targeted profile, by anyone, is refused; so is any create by the leaked caller.
    const refused = await create(gw, leakedProfiles[19]!, colleague);
    expect(codes(refused)).toEqual(["FORBIDDEN"]);
    expect(refused.errors?.[0]?.message).toBe(
      `A revocation job (${job.id}) is revoking this profile's sessions; creates are refused until it finishes`,
    );
    const byLeaked = await create(gw, bystander, leaked);
    expect(codes(byLeaked)).toEqual(["FORBIDDEN"]);
    expect(byLeaked.errors?.[0]?.message).toMatch(new RegExp(`^A revocation job \\(${job.id}\\) is revoking every session this caller minted`));
    // Other callers, on other profiles, are unaffected.
    const unaffected = await create(gw, bystander, colleague);
    expect(unaffected.errors).toBeUndefined();
    const progress = (await readJob(gw, job.id, operator)).data?.revocationJob;
    expect(progress).toMatchObject({ id: job.id, total: 20 });

    const finished = await untilFinished(gw, job.id, operator);
    expect(finished).toMatchObject({ status: "DONE", total: 20, revoked: 20, failed: 0, failureReason: null });
    expect(finished.finishedAt).not.toBeNull();

    for (const profileId of leakedProfiles) {
      expect(gw.sandbox.state(profileId)?.revoked, profileId).toBe(true);
      const ledger = (await gql(gw.url, WorkerSessionDocument, { profileId }, { token: operator })).data?.workerSession;
      expect(ledger).toMatchObject({ status: "REVOKED", revokedBy: "incident-operator" });
    }
    const deletes = gw.sandbox.requests.filter((r) => r.method === "DELETE");
    expect(deletes).toHaveLength(deletesBefore + 20);
    expect(gw.sandbox.count({ status: 429 })).toBe(0);
    expect(gw.sandbox.state(otherCallersProfile)?.revoked).toBe(false);
    // One audit line per revoke, with the operator as the actor; refused creates are audited too.
    const audits = gw.logs.audits();
    expect(audits.filter((a) => a.action === "revoke" && a.sub === "incident-operator" && a.outcome === "OK")).toHaveLength(20);
    expect(audits.filter((a) => a.action === "create" && a.outcome === "FORBIDDEN")).toHaveLength(2);
    expect(audits.filter((a) => a.action === "revoke_job" && a.sub === "incident-operator")).toHaveLength(1);

    // Once DONE, the block is lifted: the profile can be given a new session, and the caller can mint again.
    expect((await create(gw, leakedProfiles[19]!, colleague)).errors).toBeUndefined();
    expect((await create(gw, afterwards, leaked)).errors).toBeUndefined();
  }, 40_000);

  it("revokes by profile ids, and counts a profile Deel no longer knows as failed", async () => {
    const [ours, gone] = [afterwards, randomUUID()];
    // A ledger record for a profile the sandbox does not know: Deel answers 404 to its revoke.
    await gw.app.store.put({ profileId: gone, createdAt: new Date(), expiresAt: new Date(Date.now() + 3_600_000), revokedAt: null, createdBy: "svc-x", revokedBy: null }, unfenced("the test seeds the ledger directly"));
    const started = await startJob(gw, { profileIds: [ours, gone.toUpperCase()] }, operator);
    expect(started.errors).toBeUndefined();
    expect(started.data?.revokeWorkerSessions).toMatchObject({ total: 2, createdBy: null });
    const finished = await untilFinished(gw, started.data!.revokeWorkerSessions.id, operator);
    expect(finished).toMatchObject({ status: "DONE", total: 2, revoked: 1, failed: 1 });
    expect(gw.sandbox.state(ours)?.revoked).toBe(true);
  }, 20_000);
});

describe("the rules of revokeWorkerSessions and revocationJob", () => {
  let gw: TestGateway;
  let admin: string;
  beforeAll(async () => {
    gw = await startTestGateway();
    admin = await anAdminToken("rules-admin");
  });
  afterAll(() => gw?.close());

  it("needs both worker_sessions:revoke and worker_sessions:all_profiles, for the mutation and the query", async () => {
    const revokeOnly = await aCallerToken({ scopes: [Scope.revoke, Scope.read, Scope.create] });
    const allProfilesOnly = await aCallerToken({ scopes: [Scope.allProfiles, Scope.read] });
    for (const token of [revokeOnly, allProfilesOnly]) {
      const started = await startJob(gw, { createdBy: "svc-leaked" }, token);
      expect(codes(started)).toEqual(["FORBIDDEN"]);
      expect(codes(await readJob(gw, randomUUID(), token))).toEqual(["FORBIDDEN"]);
    }
    expect(codes(await gql(gw.url, RevokeWorkerSessionsDocument, { input: { createdBy: "x" } }))).toEqual(["UNAUTHENTICATED"]);
  });

  it("refuses input without a filter, with an empty createdBy, or with profile ids that are not UUIDs or too many", async () => {
    const cases: Array<[RevokeWorkerSessionsInput, RegExp]> = [
      [{}, /at least one filter/],
      [{ profileIds: [] }, /at least one filter/],
      [{ createdBy: null, profileIds: null, onlyActive: false }, /at least one filter/],
      [{ createdBy: "" }, /createdBy must be 1 to 256 characters/],
      [{ profileIds: [randomUUID(), "../x"] }, /profileIds must all be UUIDs/],
      [{ createdBy: "svc", profileIds: ["%2e%2e%2f"] }, /profileIds must all be UUIDs/],
      [{ profileIds: Array.from({ length: 2001 }, () => randomUUID()) }, /at most 2000 profiles/],
    ];
    for (const [input, message] of cases) {
      const response = await startJob(gw, input, admin);
      expect(codes(response), JSON.stringify(input).slice(0, 80)).toEqual(["BAD_USER_INPUT"]);
      expect(response.errors?.[0]?.message).toMatch(message);
    }
    expect(gw.sandbox.requests).toHaveLength(0);
  });

  it("answers null for an unknown job and BAD_USER_INPUT for an id that is not one", async () => {
    expect((await readJob(gw, randomUUID(), admin)).data).toEqual({ revocationJob: null });
    expect(codes(await readJob(gw, "job-1", admin))).toEqual(["BAD_USER_INPUT"]);
  });

  it("finishes at once, DONE with nothing to do, when nothing matches", async () => {
    const started = await startJob(gw, { createdBy: "nobody-minted-anything" }, admin);
    const job = started.data!.revokeWorkerSessions;
    expect(job).toMatchObject({ total: 0, revoked: 0 });
    expect(await untilFinished(gw, job.id, admin)).toMatchObject({ status: "DONE", total: 0 });
  });
});
