/**
 * What one revoke try means for its target, decided on the domain error and nothing else (never a
 * caller-facing code). Promises:
 *
 * - `judgeRevokeFailure` is the one judge of a failed revoke: Deel refused the organization's
 *   credentials, a passing condition worth another try later, or a final refusal.
 * - `targetAfterFailure` is the one retry schedule of a job: a passing failure below `maxAttempts`
 *   goes back `pending` after 1 s, doubled per try, at most RETRY_CAP_MS (Deel's Retry-After wins
 *   when longer, up to an hour); a refused credential goes back `pending` untouched (the job stops
 *   FAILED and a new job tries it); anything else is `failed`.
 *
 * The job is the only layer that retries a target: its revoke asks Deel for one attempt
 * (`maxAttempts: 1`), so a try here is one Deel call, and the count of tries is durable across
 * holders (`RevocationTarget.attempts`).
 */
import { assertNever } from "../../base/assert-never.js";
import { isDeelError } from "../../deel/errors.js";
import { isLedgerError } from "../errors.js";
import type { RevocationTarget } from "./job.js";

/** Waits between tries of one target: doubled per try from this, capped (Deel's Retry-After wins when longer). */
export const RETRY_BASE_MS = 1_000;
export const RETRY_CAP_MS = 30_000;
/** The longest Retry-After a target honours. */
const RETRY_AFTER_CAP_MS = 3_600_000;

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

/** The target as written before its Deel call: `in_progress`, one more try. */
export function targetInProgress(target: RevocationTarget): RevocationTarget {
  return { ...target, state: "in_progress", attempts: target.attempts + 1 };
}

/** The target after its revoke succeeded. */
export function targetRevoked(attempt: RevocationTarget): RevocationTarget {
  return { ...attempt, state: "revoked", lastError: null };
}

/**
 * The target after a failed try (`attempt` as written before the call): pending with its next
 * try's earliest time, pending untouched (credentials refused), or failed. `now` is epoch ms.
 */
export function targetAfterFailure(attempt: RevocationTarget, failure: RevokeFailure, now: number, maxAttempts: number): RevocationTarget {
  switch (failure.kind) {
    case "credentials":
      return { ...attempt, state: "pending", lastError: failure.label };
    case "transient": {
      if (attempt.attempts >= maxAttempts) return { ...attempt, state: "failed", lastError: failure.label };
      const backoff = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt.attempts - 1));
      const wait = Math.max(backoff, Math.min(RETRY_AFTER_CAP_MS, (failure.retryAfterSeconds ?? 0) * 1000));
      return { ...attempt, state: "pending", lastError: failure.label, notBefore: now + wait };
    }
    case "final":
      return { ...attempt, state: "failed", lastError: failure.label };
    default:
      return assertNever(failure);
  }
}
