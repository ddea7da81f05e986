/** The scopes of SPEC §4. */
export const Scope = {
  read: "worker_sessions:read",
  create: "worker_sessions:create",
  revoke: "worker_sessions:revoke",
  allProfiles: "worker_sessions:all_profiles",
} as const;
export type Scope = (typeof Scope)[keyof typeof Scope];

/** A verified caller: who it is, what it may do, and on which worker profiles. */
export interface Caller {
  /** The JWT `sub`, recorded as `createdBy` / `revokedBy`. */
  sub: string;
  scopes: ReadonlySet<string>;
  /** Profiles named in the caller's profile claim (lower-cased UUIDs). */
  profileIds: ReadonlySet<string>;
  /** The token's `exp`, in epoch seconds. */
  expiresAt: number;
}

export function hasScope(caller: Caller, scope: Scope): boolean {
  return caller.scopes.has(scope);
}

/** SPEC §4: `worker_sessions:all_profiles`, or the profile is in the caller's claim. */
export function mayReachProfile(caller: Caller, profileId: string): boolean {
  return caller.scopes.has(Scope.allProfiles) || caller.profileIds.has(profileId.toLowerCase());
}
