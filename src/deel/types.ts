/** What a successful mint returns. The token is handed to the caller once and never stored. */
export interface MintedSession {
  token: string;
  expiresAt: Date;
  /** Deel's `api_req_id` for the call, when the answer carried one. */
  deelRequestId?: string;
  /** True when Deel replayed an earlier answer for the same Idempotency-Key. */
  replayed: boolean;
}

export interface RevokedSession {
  deelRequestId?: string;
}

/** Options that travel with one call (request id for correlation, a caller-side abort). */
export interface CallOptions {
  /** Our own request id, sent as `x-request-id` so that Deel-side logs correlate. */
  requestId?: string;
  signal?: AbortSignal;
}

/**
 * The two Deel operations the gateway needs. Implemented over HTTP by `DeelClient`; wrapped by the
 * resilience layer (retries, budget, breaker) with the same shape.
 */
export interface DeelApi {
  createSession(profileId: string, idempotencyKey: string, options?: CallOptions): Promise<MintedSession>;
  revokeSession(profileId: string, options?: CallOptions): Promise<RevokedSession>;
}
