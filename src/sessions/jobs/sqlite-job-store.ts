import type Database from "better-sqlite3";
import { openSqlite } from "../sqlite-store.js";
import type { JobStore } from "./job-store.js";
import type { BlockingJob, NewRevocationJob, RevocationJob, RevocationJobStatus, RevocationTarget, TargetState } from "./job.js";

interface JobRow {
  id: string;
  status: string;
  created_by: string | null;
  profile_ids: string | null;
  only_active: number;
  requested_by: string;
  started_at: number;
  finished_at: number | null;
  planned: number;
  owner: string;
  lease_until: number;
  failure_reason: string | null;
  total: number;
  revoked: number;
  failed: number;
}

interface TargetRow {
  profile_id: string;
  state: string;
  attempts: number;
  not_before: number;
  last_error: string | null;
}

function toJob(row: JobRow): RevocationJob {
  return {
    id: row.id,
    status: row.status as RevocationJobStatus,
    filters: {
      createdBy: row.created_by,
      profileIds: row.profile_ids === null ? null : (JSON.parse(row.profile_ids) as string[]),
      onlyActive: row.only_active === 1,
    },
    requestedBy: row.requested_by,
    startedAt: new Date(row.started_at),
    finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
    planned: row.planned === 1,
    total: row.total,
    revoked: row.revoked,
    failed: row.failed,
    failureReason: row.failure_reason,
  };
}

/**
 * Jobs in the ledger's SQLite file (`SESSION_STORE_URL=sqlite:<path>`), on a connection of their own:
 * a job survives a restart of the process and is resumed by it. Counts are derived from the targets
 * table; every lease check and write is one statement or one immediate transaction.
 */
export class SqliteJobStore implements JobStore {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(
    path: string,
    private readonly now: () => number = Date.now,
  ) {
    this.db = openSqlite(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS revocation_jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        created_by TEXT,
        profile_ids TEXT,
        only_active INTEGER NOT NULL,
        requested_by TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        planned INTEGER NOT NULL DEFAULT 0,
        owner TEXT NOT NULL DEFAULT '',
        lease_until INTEGER NOT NULL DEFAULT 0,
        failure_reason TEXT
      ) STRICT;
      CREATE INDEX IF NOT EXISTS revocation_jobs_status ON revocation_jobs (status);
      CREATE TABLE IF NOT EXISTS revocation_targets (
        job_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        not_before INTEGER NOT NULL,
        last_error TEXT,
        PRIMARY KEY (job_id, profile_id)
      ) STRICT;
      CREATE INDEX IF NOT EXISTS revocation_targets_profile ON revocation_targets (profile_id);
    `);
    const counts = `
      (SELECT COUNT(*) FROM revocation_targets t WHERE t.job_id = j.id) AS total,
      (SELECT COUNT(*) FROM revocation_targets t WHERE t.job_id = j.id AND t.state = 'revoked') AS revoked,
      (SELECT COUNT(*) FROM revocation_targets t WHERE t.job_id = j.id AND t.state = 'failed') AS failed`;
    this.statements = {
      insert: this.db.prepare<[string, string | null, string | null, number, string, number, string, number]>(
        "INSERT INTO revocation_jobs (id, status, created_by, profile_ids, only_active, requested_by, started_at, owner, lease_until) VALUES (?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?)",
      ),
      select: this.db.prepare<[string], JobRow>(`SELECT j.*, ${counts} FROM revocation_jobs j WHERE j.id = ?`),
      running: this.db.prepare<[], { id: string }>("SELECT id FROM revocation_jobs WHERE status = 'RUNNING'"),
      claim: this.db.prepare<[string, number, string, string, number]>(
        "UPDATE revocation_jobs SET owner = ?, lease_until = ? WHERE id = ? AND status = 'RUNNING' AND (owner = ? OR owner = '' OR lease_until < ?)",
      ),
      release: this.db.prepare<[string, string]>("UPDATE revocation_jobs SET owner = '', lease_until = 0 WHERE id = ? AND owner = ?"),
      held: this.db.prepare<[string, string], { id: string }>("SELECT id FROM revocation_jobs WHERE id = ? AND owner = ? AND status = 'RUNNING'"),
      addTarget: this.db.prepare<[string, string]>(
        "INSERT INTO revocation_targets (job_id, profile_id, state, attempts, not_before, last_error) VALUES (?, ?, 'pending', 0, 0, NULL) ON CONFLICT DO NOTHING",
      ),
      planned: this.db.prepare<[string]>("UPDATE revocation_jobs SET planned = 1 WHERE id = ?"),
      targets: this.db.prepare<[string], TargetRow>("SELECT profile_id, state, attempts, not_before, last_error FROM revocation_targets WHERE job_id = ?"),
      updateTarget: this.db.prepare<[string, number, number, string | null, string, string]>(
        "UPDATE revocation_targets SET state = ?, attempts = ?, not_before = ?, last_error = ? WHERE job_id = ? AND profile_id = ?",
      ),
      finish: this.db.prepare<[string, number, string | null, string, string]>(
        "UPDATE revocation_jobs SET status = ?, finished_at = ?, failure_reason = ?, owner = '', lease_until = 0 WHERE id = ? AND owner = ? AND status = 'RUNNING'",
      ),
      blocking: this.db.prepare<[{ profile: string; sub: string }], { id: string; reason: "profile" | "creator" }>(`
        SELECT j.id,
          CASE WHEN EXISTS (SELECT 1 FROM revocation_targets t WHERE t.job_id = j.id AND t.profile_id = @profile)
                 OR EXISTS (SELECT 1 FROM json_each(coalesce(j.profile_ids, '[]')) WHERE value = @profile)
               THEN 'profile' ELSE 'creator' END AS reason
        FROM revocation_jobs j
        WHERE j.status = 'RUNNING' AND (
          j.created_by = @sub
          OR EXISTS (SELECT 1 FROM revocation_targets t WHERE t.job_id = j.id AND t.profile_id = @profile)
          OR EXISTS (SELECT 1 FROM json_each(coalesce(j.profile_ids, '[]')) WHERE value = @profile)
        )
        LIMIT 1`),
    };
  }

  async create(job: NewRevocationJob, owner: string, leaseMs: number): Promise<void> {
    const { filters } = job;
    this.statements.insert.run(
      job.id,
      filters.createdBy,
      filters.profileIds === null ? null : JSON.stringify(filters.profileIds),
      filters.onlyActive ? 1 : 0,
      job.requestedBy,
      job.startedAt.getTime(),
      owner,
      this.now() + leaseMs,
    );
  }

  async get(id: string): Promise<RevocationJob | null> {
    const row = this.statements.select.get(id);
    return row === undefined ? null : toJob(row);
  }

  async running(): Promise<string[]> {
    return this.statements.running.all().map((row) => row.id);
  }

  async claim(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = this.now();
    return this.statements.claim.run(owner, now + leaseMs, id, owner, now).changes === 1;
  }

  async release(id: string, owner: string): Promise<void> {
    this.statements.release.run(id, owner);
  }

  async addTargets(id: string, owner: string, profileIds: readonly string[], planned: boolean): Promise<number | null> {
    return this.db
      .transaction(() => {
        if (this.statements.held.get(id, owner) === undefined) return null;
        let added = 0;
        for (const profileId of profileIds) added += this.statements.addTarget.run(id, profileId).changes;
        if (planned) this.statements.planned.run(id);
        return added;
      })
      .immediate();
  }

  async targets(id: string): Promise<RevocationTarget[]> {
    return this.statements.targets.all(id).map((row) => ({
      profileId: row.profile_id,
      state: row.state as TargetState,
      attempts: row.attempts,
      notBefore: row.not_before,
      lastError: row.last_error,
    }));
  }

  async updateTarget(id: string, owner: string, target: RevocationTarget): Promise<boolean> {
    return this.db
      .transaction(() => {
        if (this.statements.held.get(id, owner) === undefined) return false;
        this.statements.updateTarget.run(target.state, target.attempts, target.notBefore, target.lastError, id, target.profileId);
        return true;
      })
      .immediate();
  }

  async finish(id: string, owner: string, status: "DONE" | "FAILED", finishedAt: Date, reason: string | null): Promise<boolean> {
    return this.statements.finish.run(status, finishedAt.getTime(), reason, id, owner).changes === 1;
  }

  async blockingJob(profileId: string, sub: string): Promise<BlockingJob | null> {
    const row = this.statements.blocking.get({ profile: profileId, sub });
    return row === undefined ? null : { id: row.id, reason: row.reason };
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
