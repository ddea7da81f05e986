import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from "jose";
import type { AuthConfig } from "./settings.js";
import { parseProfileId, type ProfileId } from "../base/profile-id.js";
import type { Authentication, Caller } from "./caller.js";
import { AuthError } from "./errors.js";

/** Clock skew allowed on `exp` / `nbf` / `iat`. */
const CLOCK_TOLERANCE_SECONDS = 60;
/** How many verified tokens are remembered (least recently used go first). */
const CACHE_SIZE = 10_000;
const MAX_TOKEN_LENGTH = 8192;

/**
 * Verifies caller JWTs (README: Callers and authorization) and turns their claims into a `Caller`.
 *
 * HS256 with `AUTH_JWT_SECRET`, or the JWKS at `AUTH_JWKS_URL` with an asymmetric algorithm
 * allow-list; `exp` and `sub` are required, `iss` / `aud` when configured. A verified token is
 * remembered until its `exp` so a caller's repeated requests skip the signature check; the cache
 * never widens what the token allows.
 */
export class CallerVerifier {
  private readonly key: Uint8Array | JWTVerifyGetKey;
  private readonly options: JWTVerifyOptions;
  private readonly profileClaim: string;
  private readonly cache = new Map<string, Caller>();
  private readonly now: () => number;

  constructor(config: AuthConfig, now: () => number = Date.now) {
    this.now = now;
    this.profileClaim = config.profileClaim;
    const options: JWTVerifyOptions = {
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ["exp", "sub"],
    };
    if (config.issuer !== undefined) options.issuer = config.issuer;
    if (config.audience !== undefined) options.audience = config.audience;
    if (config.jwksUrl !== undefined) {
      this.key = createRemoteJWKSet(new URL(config.jwksUrl), {
        timeoutDuration: config.jwksTimeoutMs,
        cooldownDuration: 30_000,
        cacheMaxAge: 600_000,
      });
      options.algorithms = [...config.jwksAlgorithms];
    } else if (config.jwtSecret !== undefined) {
      this.key = new TextEncoder().encode(config.jwtSecret);
      options.algorithms = ["HS256"];
    } else {
      throw new Error("CallerVerifier needs AUTH_JWKS_URL or AUTH_JWT_SECRET");
    }
    this.options = options;
  }

  /**
   * Verifies an `Authorization` header value. Resolves to the caller, or rejects with `AuthError`
   * for a missing, malformed, expired or wrongly signed token, or a JWKS that cannot be reached.
   */
  async verify(authorization: string | undefined): Promise<Caller> {
    if (authorization === undefined || authorization === "") throw new AuthError("Authentication required: send Authorization: Bearer <JWT>");
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i.exec(authorization.trim());
    if (match === null || authorization.length > MAX_TOKEN_LENGTH) {
      throw new AuthError("Malformed Authorization header: expected Bearer <JWT>");
    }
    const token = match[1] as string;
    // Keyed by the token itself: it is in this process's memory for the request anyway, and
    // hashing it on every request would cost more than the lookup.
    const cacheKey = token;
    const cached = this.cache.get(cacheKey);
    const nowSeconds = this.now() / 1000;
    if (cached !== undefined) {
      if (cached.expiresAt + CLOCK_TOLERANCE_SECONDS > nowSeconds) {
        this.cache.delete(cacheKey);
        this.cache.set(cacheKey, cached);
        return cached;
      }
      this.cache.delete(cacheKey);
    }

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key as Uint8Array, {
        ...this.options,
        currentDate: new Date(this.now()),
      }));
    } catch (error) {
      throw new AuthError(describe(error));
    }
    const caller = this.toCaller(payload);
    if (this.cache.size >= CACHE_SIZE) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(cacheKey, caller);
    return caller;
  }

  /**
   * Verifies an `Authorization` header value and never rejects: the outcome is the verified caller
   * or the reason it was refused. An unexpected failure is refused with a generic reason and handed
   * to `onUnexpected` for the log.
   */
  async authenticate(authorization: string | undefined, onUnexpected: (error: unknown) => void): Promise<Authentication> {
    try {
      return { kind: "verified", caller: await this.verify(authorization) };
    } catch (error) {
      if (error instanceof AuthError) return { kind: "refused", error };
      onUnexpected(error);
      return { kind: "refused", error: new AuthError("Caller could not be verified") };
    }
  }

  private toCaller(payload: JWTPayload): Caller {
    const sub = payload.sub;
    if (typeof sub !== "string" || sub === "" || sub.length > 256) throw new AuthError("Invalid token: sub must be a non-empty string");
    if (typeof payload.exp !== "number") throw new AuthError("Invalid token: exp is required");
    const scopes = new Set<string>();
    if (typeof payload.scope === "string") for (const s of payload.scope.split(" ")) if (s !== "") scopes.add(s);
    if (Array.isArray(payload.scp)) for (const s of payload.scp) if (typeof s === "string" && s !== "") scopes.add(s);
    const profileIds = new Set<ProfileId>();
    const claim = payload[this.profileClaim];
    if (Array.isArray(claim)) {
      // The same constructor as a caller's input: a claim of `6F1E…` reaches the profile `6f1e…`.
      for (const id of claim) {
        const parsed = parseProfileId(id);
        if (parsed.ok) profileIds.add(parsed.value);
      }
    }
    return { sub, scopes, profileIds, expiresAt: payload.exp };
  }
}

/** A caller-safe reason for a failed verification. */
function describe(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "Token expired";
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `Invalid token: ${error.claim} claim check failed`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "Invalid token signature";
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "Token algorithm not allowed";
  if (error instanceof joseErrors.JWKSNoMatchingKey) return "No key matches the token's kid";
  if (error instanceof joseErrors.JWKSTimeout) return "Caller keys could not be fetched in time";
  if (error instanceof joseErrors.JWKSInvalid) return "Caller keys could not be loaded";
  if (error instanceof joseErrors.JOSEError) return "Invalid token";
  return "Caller keys could not be loaded";
}
