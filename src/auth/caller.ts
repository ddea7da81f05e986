import type { ProfileId } from "../base/profile-id.js";
import type { AuthError } from "./errors.js";

/** The caller scopes (README: Callers and authorization). */
export const Scope = {
  read: "worker_sessions:read",
  create: "worker_sessions:create",
  revoke: "worker_sessions:revoke",
  /** Mint (or replay) a worker token and turn it into a Deel magic link; the token itself stays in the gateway. */
  magicLink: "worker_sessions:magic_link",
  allProfiles: "worker_sessions:all_profiles",
  /** Read the session history (who minted, replayed, linked or revoked, and when); still only on reachable profiles. */
  audit: "worker_sessions:audit",
} as const;
export type Scope = (typeof Scope)[keyof typeof Scope];

/** A verified caller: who it is, what it may do, and on which worker profiles. */
export interface Caller {
  /** The JWT `sub`, recorded as `createdBy` / `revokedBy`. */
  sub: string;
  scopes: ReadonlySet<string>;
  /** Profiles named in the caller's profile claim (its UUIDs, parsed as `ProfileId`s; anything else is dropped). */
  profileIds: ReadonlySet<ProfileId>;
  /** The token's `exp`, in epoch seconds. */
  expiresAt: number;
}

export function hasScope(caller: Caller, scope: Scope): boolean {
  return caller.scopes.has(scope);
}

/** The reach rule: `worker_sessions:all_profiles`, or the profile is in the caller's claim. */
export function mayReachProfile(caller: Caller, profileId: ProfileId): boolean {
  return caller.scopes.has(Scope.allProfiles) || caller.profileIds.has(profileId);
}

/**
 * The outcome of verifying a request's `Authorization` header: a verified caller, or the reason
 * there is none (no token, a malformed, expired or wrongly signed one, unreachable keys).
 */
export type Authentication = { readonly kind: "verified"; readonly caller: Caller } | { readonly kind: "refused"; readonly error: AuthError };
