/**
 * Upgrade safety on SQLite: a ledger file written by the previous release (its own tables, one row
 * per profile) reads the same once this release opens it, and carries on from there.
 */
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { createStorage } from "../../src/sessions/create-store.js";
import { LedgerJobStore } from "../../src/sessions/jobs/ledger-job-store.js";
import { fixedClock, sqliteLedgerAt, tempSqliteFile } from "../support/sqlite-ledger.js";
import { SEED } from "../support/store-contract.js";

const NOW = Date.parse("2026-03-02T10:20:30.456Z");
const P1 = "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50";
const P2 = "7a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d";
const P3 = "8b3c4d5e-6f70-4b8c-9d0e-2f3a4b5c6d7e";

/** The previous release's schema, as its stores created it. */
const PREVIOUS_SCHEMA = `
  CREATE TABLE worker_sessions (profile_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    revoked_at INTEGER, created_by TEXT NOT NULL, revoked_by TEXT) STRICT;
  CREATE INDEX worker_sessions_created_by ON worker_sessions (created_by);
  CREATE TABLE mint_intents (profile_id TEXT PRIMARY KEY, created_by TEXT NOT NULL, started_at INTEGER NOT NULL) STRICT;
  CREATE TABLE revocation_jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, created_by TEXT, profile_ids TEXT, only_active INTEGER NOT NULL,
    requested_by TEXT NOT NULL, started_at INTEGER NOT NULL, finished_at INTEGER, planned INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '', lease_until INTEGER NOT NULL DEFAULT 0, failure_reason TEXT) STRICT;
  CREATE TABLE revocation_targets (job_id TEXT NOT NULL, profile_id TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
    not_before INTEGER NOT NULL, last_error TEXT, PRIMARY KEY (job_id, profile_id)) STRICT;
`;

function writtenByThePreviousRelease(path: string): void {
  const db = new Database(path);
  db.exec(PREVIOUS_SCHEMA);
  const session = db.prepare("INSERT INTO worker_sessions VALUES (?, ?, ?, ?, ?, ?)");
  session.run(P1, NOW - 1000, NOW + 86_400_000, null, "caller-1", null);
  // An old record, long expired and revoked: SQLite kept it, and still does.
  session.run(P2, NOW - 90 * 86_400_000, NOW - 89 * 86_400_000, NOW - 89.5 * 86_400_000, "caller-1", "operator");
  db.prepare("INSERT INTO mint_intents VALUES (?, ?, ?)").run(P3, "caller-2", NOW - 500);
  db.prepare("INSERT INTO revocation_jobs VALUES (?, 'RUNNING', ?, ?, 1, ?, ?, NULL, 1, ?, ?, NULL)").run(
    "job-1",
    "caller-1",
    JSON.stringify([P3]),
    "operator",
    NOW - 2000,
    "runner-old",
    NOW + 60_000,
  );
  const target = db.prepare("INSERT INTO revocation_targets VALUES ('job-1', ?, ?, ?, 0, ?)");
  target.run(P1, "revoked", 1, null);
  target.run(P2, "failed", 3, "NOT_FOUND");
  db.prepare("INSERT INTO revocation_jobs VALUES ('job-0', 'DONE', NULL, ?, 0, 'operator', ?, ?, 1, '', 0, NULL)").run(JSON.stringify([P2]), NOW - 9000, NOW - 8000);
  db.close();
}

describe("a SQLite ledger written by the previous release", () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function opened() {
    const file = tempSqliteFile("wsg-upgrade-");
    cleanups.push(file.remove);
    writtenByThePreviousRelease(file.path);
    const clock = fixedClock(NOW);
    const ledger = sqliteLedgerAt(file.path, clock);
    const jobs = new LedgerJobStore(createStorage({ kind: "sqlite", path: file.path }, { clock }), { retentionMs: null, clock, ownsStorage: true });
    cleanups.push(() => ledger.close(), () => jobs.close());
    return { file, ledger, jobs, clock };
  }

  it("reads its records, intents and createdBy index the same", async () => {
    const { ledger } = opened();
    expect(await ledger.getStates([P1, P2, P3])).toEqual([
      {
        record: { profileId: P1, createdAt: new Date(NOW - 1000), expiresAt: new Date(NOW + 86_400_000), revokedAt: null, createdBy: "caller-1", revokedBy: null },
        intent: null,
      },
      {
        record: {
          profileId: P2,
          createdAt: new Date(NOW - 90 * 86_400_000),
          expiresAt: new Date(NOW - 89 * 86_400_000),
          revokedAt: new Date(NOW - 89.5 * 86_400_000),
          createdBy: "caller-1",
          revokedBy: "operator",
        },
        intent: null,
      },
      { record: null, intent: { profileId: P3, createdBy: "caller-2", startedAt: new Date(NOW - 500) } },
    ]);
    expect((await ledger.listByCreator("caller-1")).map((r) => r.profileId).sort()).toEqual([P1, P2].sort());
  });

  it("reads its revocation jobs the same, and their runner carries on", async () => {
    const { jobs } = opened();
    expect(await jobs.get("job-1")).toEqual({
      id: "job-1",
      status: "RUNNING",
      filters: { createdBy: "caller-1", profileIds: [P3], onlyActive: true },
      requestedBy: "operator",
      startedAt: new Date(NOW - 2000),
      finishedAt: null,
      planned: true,
      total: 2,
      revoked: 1,
      failed: 1,
      failureReason: null,
    });
    expect(await jobs.get("job-0")).toMatchObject({ status: "DONE", finishedAt: new Date(NOW - 8000), total: 0 });
    expect(await jobs.running()).toEqual(["job-1"]);
    expect(await jobs.blockingJob(P3, "anyone")).toEqual({ id: "job-1", reason: "profile" });
    expect(await jobs.blockingJob(P1, "anyone")).toEqual({ id: "job-1", reason: "profile" });
    expect(await jobs.blockingJob("elsewhere", "caller-1")).toEqual({ id: "job-1", reason: "creator" });
    expect(await jobs.blockingJob(P2, "caller-9")).toEqual({ id: "job-1", reason: "profile" });
    // Its lease is as the previous release left it: live, and the old runner's.
    expect(await jobs.claim("job-1", "runner-new", 60_000)).toBe(false);
    expect(await jobs.updateTarget("job-1", "runner-old", { profileId: P2, state: "revoked", attempts: 4, notBefore: 0, lastError: null })).toBe(true);
    expect(await jobs.get("job-1")).toMatchObject({ total: 2, revoked: 2, failed: 0 });
  });

  it("moves the old tables aside once, so a second opening (another process) finds everything in place", async () => {
    const { file, ledger } = opened();
    await ledger.put({ profileId: P3, createdAt: new Date(NOW), expiresAt: new Date(NOW + 1000), revokedAt: null, createdBy: "caller-3", revokedBy: null }, SEED);
    const again = sqliteLedgerAt(file.path, fixedClock(NOW));
    cleanups.push(() => again.close());
    expect(await again.get(P1)).toMatchObject({ createdBy: "caller-1" });
    expect(await again.get(P3)).toMatchObject({ createdBy: "caller-3" });
    const db = new Database(file.path, { readonly: true });
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((row) => row.name);
    db.close();
    expect(tables).toEqual(["mint_intents_v1", "revocation_jobs_v1", "revocation_targets_v1", "storage_items", "storage_keys", "storage_ordered", "worker_sessions_v1"]);
  });
});
