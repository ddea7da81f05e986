import type { WriteFence } from "./fencing.js";
import type { HistoryNote, HistoryPage, HistoryPageRequest, NewHistoryEvent } from "./history.js";
import type { MintIntent } from "./intent.js";
import type { SessionRecord } from "./record.js";

/** What the ledger holds for one profile: its record and its unresolved mint intent, each or null. */
export interface ProfileState {
  record: SessionRecord | null;
  intent: MintIntent | null;
}

/**
 * Where the ledger lives. One record per profile: a new session replaces the old one, as Deel
 * keeps one token per worker.
 *
 * Every write takes the fence of the profile's turn (see fencing.ts) and is refused with LedgerError
 * `fenced` once that turn has passed to another holder; `unfenced(why)` writes outside any turn.
 *
 * The session history (history.ts) lives beside it: a write given a `HistoryNote` appends the events
 * it describes in the same atomic commit (the session recorded as the note's action, a revoke, an
 * intent written or resolved), so the history never disagrees with the ledger.
 */
export interface SessionStore {
  /** The record for one profile, or null. */
  get(profileId: string): Promise<SessionRecord | null>;
  /** One result per id, in the order of `profileIds`, in one round trip to the backing store. */
  getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>>;
  /** Record and intent per id, in the order of `profileIds`, in one round trip (what a read shows). */
  getStates(profileIds: readonly string[]): Promise<ProfileState[]>;
  /** Writes the record of a newly minted session, replacing any earlier one for that profile. */
  put(record: SessionRecord, fence: WriteFence, note?: HistoryNote): Promise<void>;
  /**
   * `put`, made only while no later operation overtook the record (a kept write replayed, see
   * pending-writes.ts): not over a record created after `record`, nor over one revoked at or after
   * `since` (when its mint began). Decided and written in one conditional commit. Resolves to
   * whether it was written; refused, it writes nothing, its note's event neither.
   */
  putUnlessOvertaken(record: SessionRecord, since: Date, fence: WriteFence, note?: HistoryNote): Promise<boolean>;
  /**
   * Marks the profile's session revoked, unless it already is (the first revokedAt and revokedBy
   * stay). Returns the record as it now stands, or null when the ledger knows no session for the profile.
   */
  markRevoked(profileId: string, revokedAt: Date, revokedBy: string, fence: WriteFence, note?: HistoryNote): Promise<SessionRecord | null>;
  /**
   * Notes that a mint for `intent.profileId` is under way, before Deel is asked. The profile keeps
   * its OLDEST unresolved intent (see intent.ts): an earlier one begun at or before
   * `intent.startedAt`, and less than `WORKER_TOKEN_LIFETIME_MS` before it, stays as it is (its
   * startedAt and createdBy) and the call answers false; otherwise `intent` is written (replacing a
   * dead or a later one) and the call answers true. Either way the mint is noted in the index of
   * `intent.createdBy`'s mints, so that `listIntentsByCreator` finds it while it is in flight.
   */
  beginMint(intent: MintIntent, fence: WriteFence, note?: HistoryNote): Promise<boolean>;
  /**
   * Clears the profile's intent if it began at or before `upTo` (a fresh token minted by a mint
   * begun at `upTo` replaced every older one at Deel; a later mint's intent stays), or whatever it
   * is when `upTo` is not given (a revoke at Deel resolves them all).
   */
  endMint(profileId: string, fence: WriteFence, upTo?: Date, note?: HistoryNote): Promise<void>;
  /**
   * Every record whose `createdBy` is `createdBy` (the kill switch's target list), in no particular
   * order. Served by an index in every store: a replaced record leaves its old creator's entry.
   */
  listByCreator(createdBy: string): Promise<SessionRecord[]>;
  /**
   * Every unresolved intent that may stand for a mint by `createdBy` (the kill switch's in-flight and
   * lost mints), in no particular order: its own, or an older one another caller's mint left standing
   * when `createdBy` began one on the same profile (see `beginMint`). Intents past
   * `WORKER_TOKEN_LIFETIME_MS` are left out. Served by an index written by `beginMint`.
   */
  listIntentsByCreator(createdBy: string): Promise<MintIntent[]>;
  /** One unresolved intent (or null) per id, in the order of `profileIds`, in one round trip. */
  getIntents(profileIds: readonly string[]): Promise<Array<MintIntent | null>>;
  /** Appends history events that no ledger write describes (refusals, magic links made, replays of a recorded session). */
  appendHistory(events: readonly NewHistoryEvent[]): Promise<void>;
  /** History pages, one per request in order, in one round trip to the backing store. */
  readHistory(requests: readonly HistoryPageRequest[]): Promise<HistoryPage[]>;
  /** Resolves when the store can answer; rejects otherwise (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
