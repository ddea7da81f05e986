/**
 * Failures of the ledger's infrastructure (Redis), as opposed to Deel's. The GraphQL layer answers
 * them as `UPSTREAM_UNAVAILABLE` ("try again shortly") with its own words; the message here is for
 * the log and never holds a connection URL.
 *
 * - `unavailable`: the store (or the lock service) cannot be reached or did not answer in time.
 * - `busy`: another replica's operation on the same profile held the profile's lock past the wait.
 * - `fenced`: this replica lost the profile's lock while its operation ran (a long pause); a newer
 *   operation had started, so this one's ledger write was refused to keep the newer state.
 */
export type LedgerErrorKind = "unavailable" | "busy" | "fenced";

export class LedgerError extends Error {
  readonly kind: LedgerErrorKind;

  constructor(kind: LedgerErrorKind, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LedgerError";
    this.kind = kind;
  }
}

export function isLedgerError(error: unknown): error is LedgerError {
  return error instanceof LedgerError;
}

/**
 * A caller repeated an `idempotencyKey` whose session has since been replaced by a newer one: Deel
 * replayed the old token, which is no longer live (one token per worker). The gateway refuses to
 * hand out a token it knows is dead; a new key mints a new session.
 */
export class SupersededSessionError extends Error {
  constructor() {
    super("the session this idempotencyKey minted has since been replaced; use a new key to mint a new token");
    this.name = "SupersededSessionError";
  }
}

/**
 * A magic link was asked for with an `idempotencyKey` whose session has since been revoked or has
 * expired: Deel replays the old token, which can no longer sign the worker in. The gateway does
 * not ask Deel for a link it knows cannot work; a new key mints a new session.
 */
export class EndedSessionError extends Error {
  constructor() {
    super("the session this idempotencyKey minted has since been revoked or has expired; use a new key to mint a new token");
    this.name = "EndedSessionError";
  }
}

/**
 * A create refused because a revocation job (the kill switch) is running: the profile is one of its
 * targets, or the caller is the `createdBy` whose sessions it revokes. Checked before any Deel call;
 * answered FORBIDDEN until the job finishes.
 */
export class RevocationInProgressError extends Error {
  readonly jobId: string;

  constructor(jobId: string, reason: "profile" | "creator") {
    super(
      reason === "profile"
        ? `A revocation job (${jobId}) is revoking this profile's sessions; creates are refused until it finishes`
        : `A revocation job (${jobId}) is revoking every session this caller minted; its creates are refused until it finishes`,
    );
    this.name = "RevocationInProgressError";
    this.jobId = jobId;
  }
}
