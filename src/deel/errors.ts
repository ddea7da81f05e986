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

  constructor(kind: DeelErrorKind, message: string, details: DeelErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "DeelError";
    this.kind = kind;
    if (details.status !== undefined) this.status = details.status;
    if (details.deelRequestId !== undefined) this.deelRequestId = details.deelRequestId;
    if (details.retryAfterSeconds !== undefined) this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

export function isDeelError(error: unknown): error is DeelError {
  return error instanceof DeelError;
}
