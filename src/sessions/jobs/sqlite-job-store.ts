import type Database from "better-sqlite3";
import { keyNames } from "../../redis/keys.js";
import type { Write } from "../../storage/storage.js";
import { jobFields, targetJson } from "./ledger-job-store.js";
import type { RevocationJobStatus, TargetState } from "./job.js";

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
}

interface TargetRow {
  profile_id: string;
  state: string;
  attempts: number;
  not_before: number;
  last_error: string | null;
}

function tableExists(db: Database.Database, table: string): boolean {
  return db.prepare<[string], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

/**
 * Moves the revocation jobs of an earlier release (tables `revocation_jobs` and `revocation_targets`)
 * into the storage's keys as this release writes them: the job's map with its counts (derived from
 * its targets, as that release did), its targets, the profiles it blocks (the ones it names and
 * targets), and the running set. A RUNNING job keeps its owner and lease, so the runner holding it
 * (or the next one, once the lease lapses) carries on. The old tables are kept, renamed `*_v1`.
 */
export function upgradeJobTables(db: Database.Database, apply: (writes: readonly Write[]) => void): void {
  if (!tableExists(db, "revocation_jobs")) return;
  const targetsOf = db.prepare<[string], TargetRow>("SELECT profile_id, state, attempts, not_before, last_error FROM revocation_targets WHERE job_id = ?");
  for (const row of db.prepare<[], JobRow>("SELECT * FROM revocation_jobs").all()) {
    const targets = tableExists(db, "revocation_targets") ? targetsOf.all(row.id) : [];
    const profileIds = row.profile_ids === null ? null : (JSON.parse(row.profile_ids) as string[]);
    const job = {
      id: row.id,
      status: row.status as RevocationJobStatus,
      filters: { createdBy: row.created_by, profileIds, onlyActive: row.only_active === 1 },
      requestedBy: row.requested_by,
      startedAt: new Date(row.started_at),
      finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
      planned: row.planned === 1,
      total: targets.length,
      revoked: targets.filter((t) => t.state === "revoked").length,
      failed: targets.filter((t) => t.state === "failed").length,
      failureReason: row.failure_reason,
    };
    const key = keyNames.job(row.id);
    const writes: Write[] = Object.entries(jobFields(job, row.owner, row.lease_until)).map(([field, value]) => ({ op: "setField", key, field, value }));
    for (const t of targets) {
      const target = { profileId: t.profile_id, state: t.state as TargetState, attempts: t.attempts, notBefore: t.not_before, lastError: t.last_error };
      writes.push({ op: "setField", key: keyNames.jobTargets(row.id), field: t.profile_id, value: targetJson(target) });
    }
    for (const profileId of new Set([...(profileIds ?? []), ...targets.map((t) => t.profile_id)])) {
      writes.push({ op: "addMember", key: keyNames.jobBlocked(row.id), member: profileId });
    }
    if (row.status === "RUNNING") writes.push({ op: "addMember", key: keyNames.runningJobs, member: row.id });
    apply(writes);
  }
  db.exec("ALTER TABLE revocation_jobs RENAME TO revocation_jobs_v1");
  if (tableExists(db, "revocation_targets")) db.exec("ALTER TABLE revocation_targets RENAME TO revocation_targets_v1");
}
