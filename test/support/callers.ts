import { SignJWT } from "jose";
import { Scope } from "../../src/auth/caller.js";

export const TEST_JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789";
export const TEST_ISSUER = "https://issuer.test";
export const TEST_AUDIENCE = "worker-session-gateway";

export const ALL_SCOPES = Object.values(Scope);

export interface CallerSpec {
  sub?: string;
  scopes?: readonly string[];
  profiles?: readonly string[];
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  secret?: string;
  issuer?: string;
  audience?: string;
  /** Extra claims, e.g. `scp` instead of `scope`. */
  claims?: Record<string, unknown>;
  /** Use `scp` (array) instead of `scope` (string). */
  asScp?: boolean;
}

/** Signs a caller JWT with test defaults: every scope, no profiles, valid for an hour. */
export async function aCallerToken(spec: CallerSpec = {}): Promise<string> {
  const scopes = spec.scopes ?? ALL_SCOPES;
  const claims: Record<string, unknown> = { ...spec.claims };
  if (spec.asScp) claims.scp = [...scopes];
  else claims.scope = scopes.join(" ");
  if (spec.profiles !== undefined) claims.deel_profile_ids = [...spec.profiles];
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(spec.sub ?? "caller-1")
    .setIssuer(spec.issuer ?? TEST_ISSUER)
    .setAudience(spec.audience ?? TEST_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + (spec.expiresIn ?? 3600))
    .sign(new TextEncoder().encode(spec.secret ?? TEST_JWT_SECRET));
}

/** An admin: every scope, all profiles. */
export function anAdminToken(sub = "admin-1"): Promise<string> {
  return aCallerToken({ sub });
}

/** A worker acting for itself: read/create/revoke on its own profile only. */
export function aWorkerToken(profileId: string, sub = `worker-${profileId.slice(0, 8)}`): Promise<string> {
  return aCallerToken({ sub, scopes: [Scope.read, Scope.create, Scope.revoke], profiles: [profileId] });
}
