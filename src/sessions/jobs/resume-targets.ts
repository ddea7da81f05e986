/**
 * Takeover of a revocation job's targets that an earlier holder left `in_progress`. Promises: one
 * whose ledger record was revoked at or after the job's start is recorded revoked without calling
 * Deel; every other open target goes back in the queue, an interrupted one no sooner than
 * INTERRUPTED_RETRY_DELAY_MS from now. If the store refuses a write (the lease is gone), `onLost`
 * is called and nothing is returned.
 */
import type { SessionStore } from "../store.js";
import type { JobStore } from "./job-store.js";
import type { RevocationJob, RevocationTarget } from "./job.js";
import { READ_BATCH } from "./targets.js";

/**
 * A target an earlier holder left in progress (and the ledger does not show revoked) waits this long
 * before its new try: the dead holder may still hold the profile's ordering lock in Redis, which
 * lapses within 5 s; meanwhile the other targets keep the budget busy.
 */
export const INTERRUPTED_RETRY_DELAY_MS = 5_000;

export interface ResumeDeps {
  jobs: JobStore;
  store: SessionStore;
  /** The lease owner id of the runner resuming the job. */
  owner: string;
  now: () => number;
  /** Called when the store refuses a write: another runner holds the job now. */
  onLost: () => void;
}

/**
 * Targets an earlier holder left `in_progress`: one whose ledger record was revoked at or after the
 * job's start was revoked (by that holder, or by someone else since) and is counted so, without a
 * Deel call; any other goes back in the queue.
 */
export async function resumeTargets(deps: ResumeDeps, job: RevocationJob, open: RevocationTarget[]): Promise<RevocationTarget[]> {
  const interrupted = open.filter((target) => target.state === "in_progress");
  if (interrupted.length === 0) return open;
  const done = new Set<string>();
  for (let start = 0; start < interrupted.length; start += READ_BATCH) {
    const batch = interrupted.slice(start, start + READ_BATCH);
    const records = await deps.store.getMany(batch.map((target) => target.profileId));
    for (const [i, record] of records.entries()) {
      const target = batch[i] as RevocationTarget;
      if (record === null || record === undefined || record.revokedAt === null || record.revokedAt.getTime() < job.startedAt.getTime()) continue;
      if (!(await deps.jobs.updateTarget(job.id, deps.owner, { ...target, state: "revoked", lastError: null }))) {
        deps.onLost();
        return [];
      }
      done.add(target.profileId);
    }
  }
  const retryAt = deps.now() + INTERRUPTED_RETRY_DELAY_MS;
  return open
    .filter((target) => !done.has(target.profileId))
    .map((target) => (target.state === "in_progress" ? { ...target, notBefore: Math.max(target.notBefore, retryAt) } : target));
}
