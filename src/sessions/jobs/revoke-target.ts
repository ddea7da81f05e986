/**
 * One try of one revocation target. Promises: the target is written `in_progress` (attempts + 1)
 * before Deel is called, so a later holder knows Deel may have been reached; the revoke goes through
 * `WorkerSessionService.revoke` as the given actor; then the target is written revoked, pending with
 * a backoff wait (RATE_LIMITED / UPSTREAM_UNAVAILABLE below `maxAttempts`), pending with the
 * credentials marked refused on the hold (UPSTREAM_CREDENTIALS), or failed (anything else). A write
 * the store refuses means the lease is gone: `onLost` is called and nothing is retried.
 */
import { classifyFailure } from "../../errors.js";
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
  let code: string;
  let retryAfterSeconds: number | undefined;
  try {
    await deps.sessions.revoke(actor, target.profileId);
    if (!(await deps.jobs.updateTarget(job.id, deps.owner, { ...attempt, state: "revoked", lastError: null }))) deps.onLost();
    return null;
  } catch (error) {
    const failure = classifyFailure(error);
    code = failure?.code ?? "INTERNAL_SERVER_ERROR";
    retryAfterSeconds = failure?.retryAfterSeconds;
  }
  let next: RevocationTarget;
  if (code === "UPSTREAM_CREDENTIALS") {
    hold.credentialsRefused = true;
    next = { ...attempt, state: "pending", lastError: code };
  } else if ((code === "RATE_LIMITED" || code === "UPSTREAM_UNAVAILABLE") && attempt.attempts < deps.maxAttempts) {
    const backoff = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt.attempts - 1));
    next = { ...attempt, state: "pending", lastError: code, notBefore: deps.now() + Math.max(backoff, (retryAfterSeconds ?? 0) * 1000) };
  } else {
    next = { ...attempt, state: "failed", lastError: code };
  }
  if (!(await deps.jobs.updateTarget(job.id, deps.owner, next))) {
    deps.onLost();
    return null;
  }
  return next.state === "pending" && !hold.credentialsRefused ? next : null;
}
