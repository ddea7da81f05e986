import type { ProfileId } from "../base/profile-id.js";
import type { MagicLinkTarget } from "../base/redirects.js";

/** What a successful mint returns. The token is handed to the caller once and never stored. */
export interface MintedSession {
  token: string;
  expiresAt: Date;
  /** Deel's `api_req_id` for the call, when the answer carried one. */
  deelRequestId?: string;
  /** True when Deel replayed an earlier answer for the same Idempotency-Key. */
  replayed: boolean;
}

export interface DeelRevocation {
  deelRequestId?: string;
}

/**
 * What `POST /magic-link` is asked for: where the link lands inside Deel (`redirect_path`), and
 * where Deel sends the worker after (`on_success_redirect_url`, omitted when undefined). Checked
 * and normalized where it entered the gateway: the client sends it as it is.
 */
export type MagicLinkRequest = MagicLinkTarget;

/** A magic link Deel made from a worker token. The link signs the worker in: never logged. */
export interface MagicLink {
  /** An https URL. */
  url: string;
  expiresAt: Date;
  /** Deel's `api_req_id`, when the answer carried one. */
  deelRequestId?: string;
}

/** Options that travel with one call (request id for correlation, a caller-side abort, time limits). */
export interface CallOptions {
  /** Our own request id, sent as `x-request-id` so that Deel-side logs correlate. */
  requestId?: string;
  signal?: AbortSignal;
  /**
   * Absolute deadline (epoch ms). `DeelClient` never waits past it (nor past its own `timeoutMs`);
   * the resilience layer uses the earlier of it and its own whole-call deadline.
   */
  deadline?: number;
  /**
   * When the caller's operation began (epoch ms), e.g. before it queued behind other work on the
   * same profile. The resilience layer counts its whole-call deadline (`DEEL_TIMEOUT_MS`) from here,
   * so that time spent queued is part of it. Default: when the call reaches the layer.
   */
  startedAt?: number;
  /**
   * Most attempts for this call, the first included; the resilience layer never makes more than its
   * own `maxAttempts` either. A caller that retries on its own schedule (a revocation job) passes 1.
   */
  maxAttempts?: number;
}

/**
 * The Deel operations the gateway needs. Implemented over HTTP by `DeelClient`; wrapped by the
 * resilience layer (retries, budget, breaker) with the same shape.
 */
export interface DeelApi {
  /** `idempotencyKey` is the header value, made by `deriveIdempotencyKey`. */
  createSession(profileId: ProfileId, idempotencyKey: string, options?: CallOptions): Promise<MintedSession>;
  revokeSession(profileId: ProfileId, options?: CallOptions): Promise<DeelRevocation>;
  /**
   * Turns a worker token into a magic link (`POST /magic-link`, authorized by the worker token, not
   * the organization's). Optional so that a fake needing only the two session calls stays small;
   * `DeelClient` and `ResilientDeel` implement it.
   */
  createMagicLink?(workerToken: string, request: MagicLinkRequest, options?: CallOptions): Promise<MagicLink>;
}
