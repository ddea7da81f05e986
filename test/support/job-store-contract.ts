/**
 * The kill switch's part of every backend: the ledger's createdBy index, and the revocation jobs'
 * store (lease, targets, counts, the block on creates). The same suites run on SQLite (a file and :memory:)
 * (test/unit/job-store.test.ts) and on Redis (test/integration/redis-job-store.test.ts).
 */
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobStore } from "../../src/sessions/jobs/job-store.js";
import { pendingTarget, type NewRevocationJob, type RevocationFilters } from "../../src/sessions/jobs/job.js";
import type { SessionStore } from "../../src/sessions/store.js";
import { aSessionRecord, SEED, type StoreBackend } from "./store-contract.js";

export interface JobBackend {
  jobs: JobStore;
  /** A second job store on the same backend (another connection or instance: another replica). */
  other(): Promise<JobStore>;
  /** Lets `ms` pass on the clock leases expire by: a fake clock in process, a real pause on Redis (its own clock). */
  passTime(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Long enough never to lapse within a test; SHORT_LEASE_MS lapses after a short pause. */
const LEASE_MS = 60_000;
const SHORT_LEASE_MS = 150;

function aJob(filters: Partial<RevocationFilters> = {}): NewRevocationJob {
  return {
    id: randomUUID(),
    filters: { createdBy: null, profileIds: null, onlyActive: true, ...filters },
    requestedBy: "operator-1",
    startedAt: new Date(Date.parse("2026-03-02T10:20:30.456Z")),
  };
}

/** The createdBy index every ledger keeps for the kill switch. */
export function creatorIndexContract(name: string, open: () => Promise<StoreBackend>): void {
  describe(`the createdBy index: ${name}`, () => {
    let backend: StoreBackend;
    let store: SessionStore;
    const leaked = () => `leaked-${randomUUID().slice(0, 8)}`;
    beforeEach(async () => {
      backend = await open();
      store = backend.store;
    });
    afterEach(() => backend.close());

    it("lists every record a caller minted, and none of another caller's", async () => {
      const sub = leaked();
      const mine = [aSessionRecord({ createdBy: sub }, backend.now()), aSessionRecord({ createdBy: sub }, backend.now())];
      const theirs = aSessionRecord({ createdBy: "someone-else" }, backend.now());
      for (const record of [...mine, theirs]) await store.put(record, SEED);
      const listed = await store.listByCreator(sub);
      expect(listed.map((r) => r.profileId).sort()).toEqual(mine.map((r) => r.profileId).sort());
      expect(listed.find((r) => r.profileId === mine[0]!.profileId)).toEqual(mine[0]);
      expect(await store.listByCreator(leaked())).toEqual([]);
    });

    it("moves a replaced record to its new creator: the old creator no longer lists it", async () => {
      const [first, second] = [leaked(), leaked()];
      const record = aSessionRecord({ createdBy: first }, backend.now());
      await store.put(record, SEED);
      const replaced = { ...record, createdBy: second, expiresAt: new Date(record.expiresAt.getTime() + 1000) };
      await store.put(replaced, SEED);
      expect(await store.listByCreator(first)).toEqual([]);
      expect(await store.listByCreator(second)).toEqual([replaced]);
    });

    it("keeps a revoked record listed under its creator, as revoked", async () => {
      const sub = leaked();
      const record = aSessionRecord({ createdBy: sub }, backend.now());
      await store.put(record, SEED);
      const at = new Date(backend.now() + 5);
      await store.markRevoked(record.profileId, at, "operator", SEED);
      expect(await store.listByCreator(sub)).toEqual([{ ...record, revokedAt: at, revokedBy: "operator" }]);
    });

    it("lists what another writer on the same ledger recorded", async () => {
      const sub = leaked();
      const other = await backend.otherWriter();
      const record = aSessionRecord({ createdBy: sub }, backend.now());
      await other.put(record, SEED);
      expect(await store.listByCreator(sub)).toEqual([record]);
    });
  });
}

/** The revocation jobs' store. */
export function jobStoreContract(name: string, open: () => Promise<JobBackend>): void {
  describe(`the revocation jobs: ${name}`, () => {
    let backend: JobBackend;
    let jobs: JobStore;
    beforeEach(async () => {
      backend = await open();
      jobs = backend.jobs;
    });
    afterEach(() => backend.close());

    it("records a new job as RUNNING with its filters, no targets yet, and lists it as running", async () => {
      const job = aJob({ createdBy: "leaked", profileIds: [randomUUID()], onlyActive: false });
      await jobs.create(job, "runner-a", LEASE_MS);
      expect(await jobs.get(job.id)).toEqual({
        ...job,
        status: "RUNNING",
        finishedAt: null,
        planned: false,
        total: 0,
        revoked: 0,
        failed: 0,
        failureReason: null,
      });
      expect(await jobs.running()).toContain(job.id);
      expect(await jobs.get(randomUUID())).toBeNull();
    });

    it("adds targets once each, counts them, and marks the list planned", async () => {
      const job = aJob({ createdBy: "leaked" });
      await jobs.create(job, "runner-a", LEASE_MS);
      const [p1, p2, p3] = [randomUUID(), randomUUID(), randomUUID()];
      expect(await jobs.addTargets(job.id, "runner-a", [p1, p2], false)).toBe(2);
      expect(await jobs.addTargets(job.id, "runner-a", [p2, p3], true)).toBe(1);
      expect(await jobs.get(job.id)).toMatchObject({ total: 3, planned: true });
      const targets = await jobs.targets(job.id);
      expect(targets.sort((a, b) => a.profileId.localeCompare(b.profileId))).toEqual(
        [p1, p2, p3].sort().map((profileId) => pendingTarget(profileId)),
      );
    });

    it("counts revoked and failed targets once, however often a target is written", async () => {
      const job = aJob({ createdBy: "leaked" });
      await jobs.create(job, "runner-a", LEASE_MS);
      const [p1, p2] = [randomUUID(), randomUUID()];
      await jobs.addTargets(job.id, "runner-a", [p1, p2], true);
      const inProgress = { ...pendingTarget(p1), state: "in_progress" as const, attempts: 1 };
      expect(await jobs.updateTarget(job.id, "runner-a", inProgress)).toBe(true);
      await jobs.updateTarget(job.id, "runner-a", { ...inProgress, state: "revoked" });
      await jobs.updateTarget(job.id, "runner-a", { ...inProgress, state: "revoked" });
      await jobs.updateTarget(job.id, "runner-a", { ...pendingTarget(p2), state: "failed", attempts: 3, lastError: "NOT_FOUND" });
      expect(await jobs.get(job.id)).toMatchObject({ total: 2, revoked: 1, failed: 1 });
      expect((await jobs.targets(job.id)).find((t) => t.profileId === p2)).toEqual({
        profileId: p2,
        state: "failed",
        attempts: 3,
        notBefore: 0,
        lastError: "NOT_FOUND",
      });
    });

    it("lets no other runner claim a job whose lease is live, while its holder renews it", async () => {
      const job = aJob({ createdBy: "leaked" });
      await jobs.create(job, "runner-a", LEASE_MS);
      const other = await backend.other();
      expect(await other.claim(job.id, "runner-b", LEASE_MS)).toBe(false);
      expect(await jobs.claim(job.id, "runner-a", LEASE_MS)).toBe(true);
      expect(await other.addTargets(job.id, "runner-b", [randomUUID()], true)).toBeNull();
    });

    it("hands an expired lease to the next runner, and refuses every write of the runner that lost it", async () => {
      const job = aJob({ createdBy: "leaked" });
      await jobs.create(job, "runner-a", SHORT_LEASE_MS);
      const profileId = randomUUID();
      await jobs.addTargets(job.id, "runner-a", [profileId], true);
      await backend.passTime(SHORT_LEASE_MS + 100);
      const other = await backend.other();
      expect(await other.claim(job.id, "runner-b", LEASE_MS)).toBe(true);
      expect(await jobs.claim(job.id, "runner-a", LEASE_MS)).toBe(false);
      expect(await jobs.updateTarget(job.id, "runner-a", { ...pendingTarget(profileId), state: "revoked", attempts: 1 })).toBe(false);
      expect(await jobs.addTargets(job.id, "runner-a", [randomUUID()], true)).toBeNull();
      expect(await jobs.finish(job.id, "runner-a", "DONE", new Date(), null)).toBe(false);
      expect(await jobs.get(job.id)).toMatchObject({ status: "RUNNING", total: 1, revoked: 0 });
      expect(await other.updateTarget(job.id, "runner-b", { ...pendingTarget(profileId), state: "revoked", attempts: 1 })).toBe(true);
    });

    it("lets exactly one of many replicas racing for a released job claim it", async () => {
      const job = aJob({ createdBy: "leaked" });
      await jobs.create(job, "runner-a", LEASE_MS);
      await jobs.release(job.id, "runner-a");
      const replicas = [jobs, await backend.other(), await backend.other()];
      const won = await Promise.all(Array.from({ length: 12 }, (_, i) => replicas[i % 3]!.claim(job.id, `runner-${i}`, LEASE_MS)));
      expect(won.filter(Boolean)).toHaveLength(1);
    });

    it("keeps the targets and counts exact while writes for many targets race", async () => {
      const job = aJob({ createdBy: "leaked" });
      await jobs.create(job, "runner-a", LEASE_MS);
      const other = await backend.other();
      const ids = Array.from({ length: 20 }, () => randomUUID());
      // Two writers add overlapping halves at once: every profile once, counted once.
      const added = await Promise.all([jobs.addTargets(job.id, "runner-a", ids.slice(0, 14), false), other.addTargets(job.id, "runner-a", ids.slice(6), true)]);
      expect((added[0] ?? 0) + (added[1] ?? 0)).toBe(20);
      await Promise.all(
        ids.map((profileId, i) =>
          (i % 2 === 0 ? jobs : other).updateTarget(job.id, "runner-a", { ...pendingTarget(profileId), state: i % 3 === 0 ? "failed" : "revoked", attempts: 1 }),
        ),
      );
      expect(await jobs.get(job.id)).toMatchObject({ total: 20, revoked: 13, failed: 7, planned: true });
      expect((await other.targets(job.id)).filter((target) => target.state === "revoked")).toHaveLength(13);
    });

    it("lets another runner claim a released job at once", async () => {
      const job = aJob({ createdBy: "leaked" });
      await jobs.create(job, "runner-a", LEASE_MS);
      await jobs.release(job.id, "runner-a");
      expect(await (await backend.other()).claim(job.id, "runner-b", LEASE_MS)).toBe(true);
    });

    it("finishes a job: status, end time and reason kept, no longer running or claimable", async () => {
      const job = aJob({ profileIds: [randomUUID()] });
      await jobs.create(job, "runner-a", LEASE_MS);
      const finishedAt = new Date(Date.parse("2026-03-02T10:21:00.000Z"));
      expect(await jobs.finish(job.id, "runner-a", "FAILED", finishedAt, "Deel refused the credentials")).toBe(true);
      expect(await jobs.get(job.id)).toMatchObject({ status: "FAILED", finishedAt, failureReason: "Deel refused the credentials" });
      expect(await jobs.running()).not.toContain(job.id);
      expect(await jobs.claim(job.id, "runner-b", LEASE_MS)).toBe(false);
    });

    it("blocks creates for the profiles it names and targets, and by its createdBy, seen by every replica, until it finishes", async () => {
      const [named, targeted, untouched] = [randomUUID(), randomUUID(), randomUUID()];
      const sub = `leaked-${randomUUID().slice(0, 8)}`;
      const job = aJob({ createdBy: sub, profileIds: [named, targeted] });
      await jobs.create(job, "runner-a", LEASE_MS);
      await jobs.addTargets(job.id, "runner-a", [targeted], true);
      const other = await backend.other();
      for (const replica of [jobs, other]) {
        expect(await replica.blockingJob(named, "anyone")).toEqual({ id: job.id, reason: "profile" });
        expect(await replica.blockingJob(targeted, "anyone")).toEqual({ id: job.id, reason: "profile" });
        expect(await replica.blockingJob(untouched, sub)).toEqual({ id: job.id, reason: "creator" });
        expect(await replica.blockingJob(untouched, "anyone")).toBeNull();
      }
      await jobs.finish(job.id, "runner-a", "DONE", new Date(), null);
      expect(await other.blockingJob(named, sub)).toBeNull();
    });
  });
}
