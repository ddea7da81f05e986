/**
 * A revocation job (the kill switch): every session of the ledger that matches its filters, revoked
 * at Deel through the ordinary revoke path, in the background, paced by the organization's budget,
 * and resumable by any replica once the one running it stops or dies.
 */

export type RevocationJobStatus = "RUNNING" | "DONE" | "FAILED";

/** Which sessions a job revokes. At least one of `createdBy` and `profileIds` is set. */
export interface RevocationFilters {
  /** Only sessions minted by this caller (`sub`); while the job runs, this caller's creates are refused. */
  createdBy: string | null;
  /** Only sessions of these profiles (lower-case UUIDs). */
  profileIds: readonly string[] | null;
  /** Only sessions that are ACTIVE (or UNKNOWN: a token may exist) when the job lists them. */
  onlyActive: boolean;
}

/** What the creator of a job records: the rest (counts, lease, targets) is the store's. */
export interface NewRevocationJob {
  id: string;
  filters: RevocationFilters;
  /** The `sub` of the operator who started it; the actor of every revoke it makes. */
  requestedBy: string;
  startedAt: Date;
}

export interface RevocationJob extends NewRevocationJob {
  status: RevocationJobStatus;
  finishedAt: Date | null;
  /** The target list has been written (a holder that died before that leaves it to the next one). */
  planned: boolean;
  total: number;
  revoked: number;
  failed: number;
  /** Why a FAILED job stopped; null otherwise. */
  failureReason: string | null;
}

/**
 * One profile a job revokes. `in_progress` is written before the Deel call: a holder that finds a
 * target in that state knows an earlier holder may have reached Deel for it.
 */
export type TargetState = "pending" | "in_progress" | "revoked" | "failed";

export interface RevocationTarget {
  profileId: string;
  state: TargetState;
  /** Revoke attempts started for this target so far. */
  attempts: number;
  /** Epoch ms before which the target is not tried again (after RATE_LIMITED / UPSTREAM_UNAVAILABLE). */
  notBefore: number;
  /** The error code of the last failed attempt, if any. */
  lastError: string | null;
}

export function isSettled(state: TargetState): boolean {
  return state === "revoked" || state === "failed";
}

export function pendingTarget(profileId: string): RevocationTarget {
  return { profileId, state: "pending", attempts: 0, notBefore: 0, lastError: null };
}

/** Why a running job refuses a create: the profile is one of its targets, or the caller is its `createdBy`. */
export interface BlockingJob {
  id: string;
  reason: "profile" | "creator";
}
