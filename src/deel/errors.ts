/**
 * Errors raised by the Deel REST client. This module never imports graphql: the GraphQL layer
 * translates these into the gateway's error codes at one boundary (src/graphql/errors.ts).
 */

/**
 * Why a Deel call failed, as far as the gateway needs to know.
 *
 * - `bad_request`: Deel answered 400 (or we refused the input before calling: `invalid_input`).
 * - `credentials`: Deel refused *our* organization token (401/403).
 * - `worker_token_refused`: Deel refused a *worker* token on a call made with it (401/403 on
 *   `POST /magic-link`): that token was revoked, replaced or expired at Deel. Not the operator's
 *   credentials, and not retried.
 * - `not_found`: Deel answered 404.
 * - `rate_limited`: Deel answered 429, or our own outbound budget could not fit the call in its deadline.
 * - `unavailable`: 5xx, a timeout, a broken connection, an open circuit.
 * - `bad_response`: Deel answered something the contract does not allow (HTML, truncated JSON, a 201
 *   without a token, an unexpected status).
 */
export type DeelErrorKind =
  | "invalid_input"
  | "bad_request"
  | "credentials"
  | "worker_token_refused"
  | "not_found"
  | "rate_limited"
  | "unavailable"
  | "bad_response";

export interface DeelErrorDetails {
  /** HTTP status Deel answered, when it answered at all. */
  status?: number;
  /** Deel's `api_req_id`, when the body carried one. */
  deelRequestId?: string;
  /** Seconds to wait before trying again (from `Retry-After`, or from our own budget). */
  retryAfterSeconds?: number;
  /** The underlying error, for the log only. */
  cause?: unknown;
  /**
   * Whether Deel may have acted on the call (for a create: minted a token) although it failed.
   * Default: true for `unavailable`, and for `bad_response` unless Deel answered a 4xx; false
   * otherwise. See `DeelError.mayHaveMinted`.
   */
  mayHaveMinted?: boolean;
}

/**
 * Whether Deel answered with a 4xx: it judged the request on its merits and refused it. Such an
 * answer says two things, both decided here only: Deel did not act on the call (so `mayHaveMinted`
 * defaults to false), and Deel is up and answering (so the circuit breaker counts it as healthy).
 * Retrying cannot change it. `status` is undefined when no answer came at all.
 */
export function deelJudgedRequest(status: number | undefined): boolean {
  return status !== undefined && status >= 400 && status <= 499;
}

/** The conservative default of `mayHaveMinted`: only a refusal or a 4xx is sure to have done nothing. */
function mayHaveMintedByDefault(kind: DeelErrorKind, status: number | undefined): boolean {
  if (kind === "unavailable") return true;
  if (kind === "bad_response") return !deelJudgedRequest(status);
  return false;
}

/**
 * A coded failure of a Deel call. The message is safe to log: it never holds a token or the upstream
 * body. It is *not* shown to GraphQL callers; the GraphQL layer picks its own words.
 */
export class DeelError extends Error {
  readonly kind: DeelErrorKind;
  readonly status?: number;
  readonly deelRequestId?: string;
  readonly retryAfterSeconds?: number;
  /**
   * True when a request of this call reached (or may have reached) Deel and its answer does not
   * rule out that Deel acted on it: a 5xx, a timeout or a broken connection after the request was
   * written, a garbled 2xx. False when no request left (invalid input, an open circuit, no budget
   * slot, too little deadline left, a connect-phase failure such as ECONNREFUSED, DNS or TLS) and
   * when Deel refused on the merits (400, 401/403, 404, 429). `ResilientDeel` sets it on the error
   * that ends a call to the OR over all its attempts, so a 502 followed by a 429 stays true. The
   * session service clears a mint intent after a failed create only when it is false.
   */
  readonly mayHaveMinted: boolean;

  constructor(kind: DeelErrorKind, message: string, details: DeelErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "DeelError";
    this.kind = kind;
    if (details.status !== undefined) this.status = details.status;
    if (details.deelRequestId !== undefined) this.deelRequestId = details.deelRequestId;
    if (details.retryAfterSeconds !== undefined) this.retryAfterSeconds = details.retryAfterSeconds;
    this.mayHaveMinted = details.mayHaveMinted ?? mayHaveMintedByDefault(kind, details.status);
  }
}

/** The details `error` was made with, as they stand now (`mayHaveMinted` resolved, never defaulted again). */
function detailsOf(error: DeelError): DeelErrorDetails {
  const details: DeelErrorDetails = { mayHaveMinted: error.mayHaveMinted };
  if (error.status !== undefined) details.status = error.status;
  if (error.deelRequestId !== undefined) details.deelRequestId = error.deelRequestId;
  if (error.retryAfterSeconds !== undefined) details.retryAfterSeconds = error.retryAfterSeconds;
  if (error.cause !== undefined) details.cause = error.cause;
  return details;
}

/**
 * A copy of `error` (same kind, message and cause) with `changes` applied to its details. The one
 * way to change a `DeelError`: errors are immutable, and a field copied by hand in two places is a
 * field one of them forgets.
 */
export function copyDeelError(error: DeelError, changes: DeelErrorDetails): DeelError {
  return new DeelError(error.kind, error.message, { ...detailsOf(error), ...changes });
}

/** `error` itself when its `mayHaveMinted` already is `mayHaveMinted`, else a copy that says so. */
export function withMayHaveMinted(error: DeelError, mayHaveMinted: boolean): DeelError {
  return error.mayHaveMinted === mayHaveMinted ? error : copyDeelError(error, { mayHaveMinted });
}

export function isDeelError(error: unknown): error is DeelError {
  return error instanceof DeelError;
}
