/**
 * Takeover of the targets an earlier holder of a job left open. Promises: a target left
 * `in_progress` whose ledger record was revoked at or after the job's start was revoked (by that
 * holder, or by someone since) and is answered as `revoked`, to be written without a Deel call;
 * every other open target is answered to try, one left `in_progress` no sooner than
 * INTERRUPTED_RETRY_DELAY_MS from `now`. It only reads the ledger: the caller writes.
 */
import type { SessionStore } from "../store.js";
import type { RevocationJob, RevocationTarget } from "./job.js";
import { READ_BATCH } from "./targets.js";

/**
 * A target an earlier holder left in progress (and the ledger does not show revoked) waits this long
 * before its new try: the dead holder may still hold the profile's ordering lock in Redis, which
 * lapses within 5 s; meanwhile the other targets keep the budget busy.
 */
export const INTERRUPTED_RETRY_DELAY_MS = 5_000;

export interface ResumedTargets {
  /** Targets the ledger shows revoked since the job began: to be written `revoked`, no Deel call. */
  revoked: RevocationTarget[];
  /** Targets to try, with the earliest time of their next try. */
  toTry: RevocationTarget[];
}

/** Sorts the job's open targets (none settled) into those already revoked and those to try; `now` is epoch ms. */
export async function resumeTargets(store: SessionStore, job: RevocationJob, open: readonly RevocationTarget[], now: number): Promise<ResumedTargets> {
  const interrupted = open.filter((target) => target.state === "in_progress");
  const revokedIds = new Set<string>();
  for (let start = 0; start < interrupted.length; start += READ_BATCH) {
    const batch = interrupted.slice(start, start + READ_BATCH);
    const records = await store.getMany(batch.map((target) => target.profileId));
    for (const [i, record] of records.entries()) {
      if (record === null || record === undefined || record.revokedAt === null || record.revokedAt.getTime() < job.startedAt.getTime()) continue;
      revokedIds.add((batch[i] as RevocationTarget).profileId);
    }
  }
  const retryAt = now + INTERRUPTED_RETRY_DELAY_MS;
  const revoked: RevocationTarget[] = [];
  const toTry: RevocationTarget[] = [];
  for (const target of open) {
    if (revokedIds.has(target.profileId)) revoked.push({ ...target, state: "revoked", lastError: null });
    else toTry.push(target.state === "in_progress" ? { ...target, notBefore: Math.max(target.notBefore, retryAt) } : target);
  }
  return { revoked, toTry };
}
