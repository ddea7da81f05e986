import { assertNever } from "../base/assert-never.js";
import { AuthError } from "../auth/errors.js";
import { isDeelError, type DeelError } from "../deel/errors.js";
import { EndedSessionError, isLedgerError, RevocationInProgressError, SupersededSessionError, type LedgerError } from "../sessions/errors.js";

/**
 * The gateway's error codes (README: Errors). Every error a caller sees carries one of these (or one of GraphQL's
 * own request codes) in `extensions.code`, and the audit log uses the same names for outcomes.
 */
export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "BAD_USER_INPUT"
  | "NOT_FOUND"
  | "RATE_LIMITED"
  | "UPSTREAM_UNAVAILABLE"
  | "UPSTREAM_CREDENTIALS"
  | "INTERNAL_SERVER_ERROR";

/**
 * What a caller is told about a failure the gateway knows: the code, our own words (never the
 * upstream body, a URL or a token) and the extensions the contract allows.
 */
export interface Failure {
  code: ErrorCode;
  message: string;
  retryAfterSeconds?: number;
  deelRequestId?: string;
}

/** The longest wait a caller is told: a Deel `Retry-After` of days is passed on as an hour. */
export const MAX_RETRY_AFTER_SECONDS = 3600;

/** `retryAfterSeconds` is always a whole number of seconds, from 1 to MAX_RETRY_AFTER_SECONDS. */
export function retryAfter(seconds: number | undefined): number {
  if (seconds === undefined || Number.isNaN(seconds)) return 1;
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(seconds)));
}

function fromDeel(error: DeelError): Failure {
  const failure = (code: ErrorCode, message: string): Failure =>
    error.deelRequestId === undefined ? { code, message } : { code, message, deelRequestId: error.deelRequestId };
  switch (error.kind) {
    case "invalid_input":
      // Raised before any call, by our own checks; their messages name the field and the rule.
      return failure("BAD_USER_INPUT", error.message);
    case "bad_request":
      return failure("BAD_USER_INPUT", "Deel rejected the request as invalid");
    case "credentials":
      return failure("UPSTREAM_CREDENTIALS", "Deel refused the gateway's organization credentials; the operator must fix them");
    case "worker_token_refused":
      // The worker token behind a magic link is dead at Deel (revoked or replaced outside this
      // gateway). Retrying with the same idempotencyKey would replay the same dead token.
      return failure(
        "BAD_USER_INPUT",
        "Deel refused the worker token minted for this link: it was revoked or replaced at Deel meanwhile; retry with a new idempotencyKey (or none)",
      );
    case "not_found":
      return failure("NOT_FOUND", "Deel does not know this worker profile");
    case "rate_limited": {
      const seconds = retryAfter(error.retryAfterSeconds);
      return { ...failure("RATE_LIMITED", `The organization's Deel request budget is spent; retry in ${seconds} s`), retryAfterSeconds: seconds };
    }
    case "unavailable":
      return failure("UPSTREAM_UNAVAILABLE", "Deel is unavailable; try again shortly");
    case "bad_response":
      return failure("UPSTREAM_UNAVAILABLE", "Deel answered in a way the gateway cannot use; try again shortly");
    default:
      return assertNever(error.kind);
  }
}

/**
 * The ledger's infrastructure (Redis) failing is retryable, like an upstream outage, so
 * UPSTREAM_UNAVAILABLE, with words that say which part is down.
 */
function fromLedger(error: LedgerError): Failure {
  switch (error.kind) {
    case "unavailable":
      return { code: "UPSTREAM_UNAVAILABLE", message: "The session ledger is unavailable; try again shortly" };
    case "busy":
      return { code: "UPSTREAM_UNAVAILABLE", message: "Another operation on this worker profile is still in progress; try again shortly" };
    case "fenced":
      return { code: "UPSTREAM_UNAVAILABLE", message: "The operation lost its turn on this worker profile and was not recorded; try again" };
    default:
      return assertNever(error.kind);
  }
}

/**
 * The one classifier of failures: which error code a thrown error gets, and what the caller is told.
 * The GraphQL layer turns the result into an error; the ledger's audit line records its code.
 * Undefined for anything unexpected, which is masked as INTERNAL_SERVER_ERROR and logged in full.
 */
export function classifyFailure(error: unknown): Failure | undefined {
  if (isDeelError(error)) return fromDeel(error);
  if (isLedgerError(error)) return fromLedger(error);
  if (error instanceof AuthError) return { code: "UNAUTHENTICATED", message: error.message };
  if (error instanceof SupersededSessionError || error instanceof EndedSessionError) return { code: "BAD_USER_INPUT", message: error.message };
  if (error instanceof RevocationInProgressError) return { code: "FORBIDDEN", message: error.message };
  return undefined;
}

