export type JwtAlgorithm = "RS256" | "ES256" | "PS256" | "EdDSA" | "HS256";

export interface AuthConfig {
  /** Verify caller JWTs against this JWKS (asymmetric algorithms only). */
  readonly jwksUrl?: string;
  /** Or verify HS256 with this shared secret. */
  readonly jwtSecret?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Claim that lists the caller's Deel profile ids. */
  readonly profileClaim: string;
  /** Asymmetric algorithms accepted from the JWKS. */
  readonly jwksAlgorithms: readonly JwtAlgorithm[];
  /** How long to wait for the JWKS endpoint before giving up on a request. */
  readonly jwksTimeoutMs: number;
}
