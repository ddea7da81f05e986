/**
 * The ledger's record of the latest session minted through this service for one worker profile.
 * The token itself is never part of it.
 */
export interface SessionRecord {
  profileId: string;
  createdAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  /** The caller's `sub` that minted the session. */
  createdBy: string;
  revokedBy: string | null;
}

/** UNKNOWN comes only from an unresolved mint intent (see intent.ts), never from a record. */
export type SessionStatus = "ACTIVE" | "EXPIRED" | "REVOKED" | "UNKNOWN";

/**
 * Status is derived at read time, never stored: a revoked session is REVOKED even after it would
 * have expired; otherwise it is EXPIRED from `expiresAt` on.
 */
export function statusOf(record: SessionRecord, now: Date): Exclude<SessionStatus, "UNKNOWN"> {
  if (record.revokedAt !== null) return "REVOKED";
  if (now.getTime() >= record.expiresAt.getTime()) return "EXPIRED";
  return "ACTIVE";
}
