/**
 * One try of one revocation target. Promises: the target is written `in_progress` (attempts + 1)
 * before Deel is called, so a later holder knows Deel may have been reached; the revoke goes through
 * `WorkerSessionService.revoke` as the given actor; then the target is written revoked, pending with
 * a backoff wait (RATE_LIMITED / UPSTREAM_UNAVAILABLE below `maxAttempts`), pending with the
 * credentials marked refused on the hold (UPSTREAM_CREDENTIALS), or failed (anything else). A write
 * the store refuses means the lease is gone: `onLost` is called and nothing is retried.
 */
import { storedProfileId } from "../../base/profile-id.js";
import { isDeelError } from "../../deel/errors.js";
import { isLedgerError } from "../errors.js";
import type { Actor, WorkerSessionService } from "../service.js";
import type { Hold } from "./hold.js";
import type { JobStore } from "./job-store.js";
import type { RevocationJob, RevocationTarget } from "./job.js";

/** Waits between tries of one target: doubled per try from this, capped (Deel's Retry-After wins when longer). */
export const RETRY_BASE_MS = 1_000;
export const RETRY_CAP_MS = 30_000;

export interface RevokeTargetDeps {
  jobs: JobStore;
  sessions: WorkerSessionService;
  /** The lease owner id of the runner making the try. */
  owner: string;
  /** Revoke attempts per target (after RATE_LIMITED / UPSTREAM_UNAVAILABLE) before it counts as failed. */
  maxAttempts: number;
  now: () => number;
  /** Called when the store refuses a write: another runner holds the job now. */
  onLost: () => void;
}

/**
 * What a failed revoke means for its target, judged on the domain error: Deel refused the
 * organization's credentials (no revoke can succeed), a passing condition worth another try later
 * (Deel's budget or Deel itself, the ledger's backend), or a final refusal. `label` is what the
 * target records as its last error.
 */
export type RevokeFailure =
  | { kind: "credentials"; label: string }
  | { kind: "transient"; label: string; retryAfterSeconds?: number }
  | { kind: "final"; label: string };

export function judgeRevokeFailure(error: unknown): RevokeFailure {
  if (isDeelError(error)) {
    const label = `deel:${error.kind}`;
    switch (error.kind) {
      case "credentials":
        return { kind: "credentials", label };
      case "rate_limited":
      case "unavailable":
      case "bad_response":
        return error.retryAfterSeconds === undefined ? { kind: "transient", label } : { kind: "transient", label, retryAfterSeconds: error.retryAfterSeconds };
      default:
        return { kind: "final", label };
    }
  }
  if (isLedgerError(error)) return { kind: "transient", label: `ledger:${error.kind}` };
  return { kind: "final", label: "internal" };
}

/** One try of one target. Resolves to the target to try again later, or null. */
export async function revokeTarget(
  deps: RevokeTargetDeps,
  job: RevocationJob,
  target: RevocationTarget,
  actor: Actor,
  hold: Hold,
): Promise<RevocationTarget | null> {
  const attempt: RevocationTarget = { ...target, state: "in_progress", attempts: target.attempts + 1 };
  // Written before Deel is called: a holder taking over knows Deel may have been reached.
  if (!(await deps.jobs.updateTarget(job.id, deps.owner, attempt))) {
    deps.onLost();
    return null;
  }
  let failure: RevokeFailure;
  try {
    await deps.sessions.revoke(actor, storedProfileId(target.profileId));
    if (!(await deps.jobs.updateTarget(job.id, deps.owner, { ...attempt, state: "revoked", lastError: null }))) deps.onLost();
    return null;
  } catch (error) {
    failure = judgeRevokeFailure(error);
  }
  let next: RevocationTarget;
  if (failure.kind === "credentials") {
    hold.credentialsRefused = true;
    next = { ...attempt, state: "pending", lastError: failure.label };
  } else if (failure.kind === "transient" && attempt.attempts < deps.maxAttempts) {
    const backoff = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt.attempts - 1));
    const wait = Math.max(backoff, Math.min(3600, failure.retryAfterSeconds ?? 0) * 1000);
    next = { ...attempt, state: "pending", lastError: failure.label, notBefore: deps.now() + wait };
  } else {
    next = { ...attempt, state: "failed", lastError: failure.label };
  }
  if (!(await deps.jobs.updateTarget(job.id, deps.owner, next))) {
    deps.onLost();
    return null;
  }
  return next.state === "pending" && !hold.credentialsRefused ? next : null;
}
