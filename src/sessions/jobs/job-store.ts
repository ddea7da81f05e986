import type { BlockingJob, NewRevocationJob, RevocationJob, RevocationTarget } from "./job.js";

/**
 * Where revocation jobs live: next to the ledger, on the same storage (SQLite or Redis), so
 * that a job outlives the replica that started it.
 *
 * A job is held by one runner at a time through a lease (owner id + expiry): `claim` takes a job
 * whose lease is free or has expired, or renews one's own; every write of a runner names its owner
 * id and is refused (false / null) once another runner has claimed the job, so a runner that lost
 * its lease (paused, cut off) cannot overwrite its successor's progress.
 */
export interface JobStore {
  /** Records a new RUNNING job, leased to `owner`. From now on it blocks creates (see `blockingJob`). */
  create(job: NewRevocationJob, owner: string, leaseMs: number): Promise<void>;
  /** The job with its counts, or null when unknown (or past retention). */
  get(id: string): Promise<RevocationJob | null>;
  /** Ids of every RUNNING job, held or orphaned. */
  running(): Promise<string[]>;
  /** Takes (or renews) the lease of a RUNNING job: true when `owner` holds it now. */
  claim(id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Gives the lease up (a clean stop), so that another runner may claim the job at once. */
  release(id: string, owner: string): Promise<void>;
  /**
   * Adds pending targets (profiles already listed are left as they are); with `planned`, marks the
   * target list as written. Resolves to how many were new, or null when `owner` no longer holds the job.
   */
  addTargets(id: string, owner: string, profileIds: readonly string[], planned: boolean): Promise<number | null>;
  /** Every target of the job, in no particular order. */
  targets(id: string): Promise<RevocationTarget[]>;
  /** Writes one target's progress (and the job's counts); false when `owner` no longer holds the job. */
  updateTarget(id: string, owner: string, target: RevocationTarget): Promise<boolean>;
  /** Ends the job (DONE or FAILED); false when `owner` no longer holds it. */
  finish(id: string, owner: string, status: "DONE" | "FAILED", finishedAt: Date, reason: string | null): Promise<boolean>;
  /** A RUNNING job that refuses a create of `sub` for `profileId`, or null. */
  blockingJob(profileId: string, sub: string): Promise<BlockingJob | null>;
  close(): Promise<void>;
}
