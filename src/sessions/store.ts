import type { MintIntent } from "./intent.js";
import type { SessionRecord } from "./record.js";

/**
 * Where the ledger lives. One record per profile: a new session replaces the old one, as Deel
 * keeps one token per worker.
 */
export interface SessionStore {
  /** The record for one profile, or null. */
  get(profileId: string): Promise<SessionRecord | null>;
  /** One result per id, in the order of `profileIds`, in one round trip to the backing store. */
  getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>>;
  /** Writes the record of a newly minted session, replacing any earlier one for that profile. */
  put(record: SessionRecord): Promise<void>;
  /**
   * Marks the profile's session revoked, unless it already is. Returns the record as it now
   * stands, or null when the ledger knows no session for the profile.
   */
  markRevoked(profileId: string, revokedAt: Date, revokedBy: string): Promise<SessionRecord | null>;
  /**
   * Notes that a mint for `intent.profileId` is under way, before Deel is asked; replaces any
   * earlier intent for the profile.
   */
  beginMint(intent: MintIntent): Promise<void>;
  /**
   * Clears the profile's intent: only the one begun at `startedAt` when given (a later mint's
   * stays), any when not (a revoke at Deel resolves them all).
   */
  endMint(profileId: string, startedAt?: Date): Promise<void>;
  /**
   * Every record whose `createdBy` is `createdBy` (the kill switch's target list), in no particular
   * order. Served by an index in every store: a replaced record leaves its old creator's entry.
   */
  listByCreator(createdBy: string): Promise<SessionRecord[]>;
  /** One unresolved intent (or null) per id, in the order of `profileIds`, in one round trip. */
  getIntents(profileIds: readonly string[]): Promise<Array<MintIntent | null>>;
  /** Resolves when the store can answer; rejects otherwise (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
