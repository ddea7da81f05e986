/**
 * Ledger writes that Deel's answer made necessary but the store could not take (it was away, or did
 * not answer in time): kept in the replica and written when the store answers again, each in the
 * profile's turn and each only while the profile still stands where the operation left it.
 *
 * Without them, an outage leaves the ledger behind Deel: a create that minted nothing leaves its
 * intent (reads show UNKNOWN while Deel holds nothing), a mint whose record could not be written
 * leaves the older record (ACTIVE with the older expiry, then UNKNOWN), a revoke Deel carried out
 * leaves the session ACTIVE. Each resolution is conditional on the intent (and, for a revoke, the
 * record) it resolves, so one that a later operation has overtaken is dropped, never replayed over
 * newer state:
 *
 * - `clear`: the mint minted nothing new (refused, replayed), or its intent write may have landed
 *   unseen; clears the profile's intent only while it is exactly this mint's own.
 * - `record`: Deel minted (or replayed) a session the ledger must describe; written only while an
 *   intent begun at or before this mint's still stands (a later fresh mint or a revoke clears it,
 *   and then owns the profile's state), and, in the write's own commit, never over a record created
 *   after this one nor one revoked at or after this mint began (a later operation whose own intent
 *   resolution was itself kept leaves the intent standing); then the intents it resolves are
 *   cleared as the mint would.
 * - `revoke`: Deel revoked the profile's token; written only while the profile's intent is still the
 *   one the revoke read, and its record is the one it read or the one it began to write.
 *
 * Known limit, shared with a lost answer (see intent.ts): a mint on another replica that begins
 * while a kept resolution still waits, and whose own answer is then lost, relied on the intent this
 * replica clears; the retry runs every `PENDING_RETRY_MS` once the store answers, so that window is
 * short.
 */
import type { Fence } from "./fencing.js";
import type { HistoryNote } from "./history.js";
import { intentMayBeLive, recordFromIntent, type MintIntent } from "./intent.js";
import type { SessionRecord } from "./record.js";
import type { ProfileState, SessionStore } from "./store.js";

/**
 * One kept write, with the history notes its ledger writes carry (`note` for the record,
 * `resolvedNote` for clearing the intent), exactly as the operation would have written them: never
 * optional, so that no kept write can leave out the event its write records.
 */
export type PendingWrite =
  | { readonly kind: "clear"; readonly intent: MintIntent; readonly resolvedNote: HistoryNote }
  | {
      readonly kind: "record";
      readonly intent: MintIntent;
      readonly record: SessionRecord;
      readonly replayed: boolean;
      readonly note?: HistoryNote;
      readonly resolvedNote: HistoryNote;
    }
  | {
      readonly kind: "revoke";
      readonly seen: ProfileState;
      readonly revokedAt: Date;
      readonly revokedBy: string;
      readonly note: HistoryNote;
      readonly resolvedNote: HistoryNote;
    };

/** How often a replica with kept writes tries them again (each try is one read per profile). */
export const PENDING_RETRY_MS = 250;

function sameTime(a: Date | null, b: Date | null): boolean {
  return (a === null ? null : a.getTime()) === (b === null ? null : b.getTime());
}

function sameIntent(a: MintIntent | null, b: MintIntent | null): boolean {
  if (a === null || b === null) return a === b;
  return a.profileId === b.profileId && a.createdBy === b.createdBy && sameTime(a.startedAt, b.startedAt);
}

function sameRecord(a: SessionRecord | null, b: SessionRecord | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.profileId === b.profileId &&
    a.createdBy === b.createdBy &&
    a.revokedBy === b.revokedBy &&
    sameTime(a.createdAt, b.createdAt) &&
    sameTime(a.expiresAt, b.expiresAt) &&
    sameTime(a.revokedAt, b.revokedAt)
  );
}

/**
 * What a revoke that Deel carried out writes, from the state it read: the record marked REVOKED, or,
 * when an intent may stand for a live token, the session the intent describes, REVOKED, with the
 * intent cleared. Returns the record as it then stands. The one place this rule lives: the service's
 * revoke and a kept `revoke` resolution both write through it.
 */
export async function writeRevoke(
  store: SessionStore,
  profileId: string,
  seen: ProfileState,
  revoke: { revokedAt: Date; revokedBy: string; note?: HistoryNote | undefined; resolvedNote?: HistoryNote | undefined },
  fence: Fence,
): Promise<SessionRecord | null> {
  const { intent } = seen;
  const { revokedAt, revokedBy, note, resolvedNote } = revoke;
  if (intent === null || !intentMayBeLive(intent, revokedAt)) {
    const session = await store.markRevoked(profileId, revokedAt, revokedBy, fence, note);
    // A dead intent (any token it stood for has expired) is tidied away with the revoke.
    if (intent !== null) await store.endMint(profileId, fence, undefined, resolvedNote);
    return session;
  }
  const session: SessionRecord = { ...recordFromIntent(intent), revokedAt, revokedBy };
  await store.put(session, fence, note);
  await store.endMint(profileId, fence, undefined, resolvedNote);
  return session;
}

/** The record a revoke from `seen` leaves (for recognising one that was half written). */
function revokedFrom(seen: ProfileState, revokedAt: Date, revokedBy: string): SessionRecord | null {
  const { intent, record } = seen;
  if (intent !== null && intentMayBeLive(intent, revokedAt)) return { ...recordFromIntent(intent), revokedAt, revokedBy };
  if (record === null) return null;
  return record.revokedAt !== null ? record : { ...record, revokedAt, revokedBy };
}

/** Applies one kept write in the profile's turn, or drops it when a later operation overtook it. */
async function apply(store: SessionStore, write: PendingWrite, fence: Fence): Promise<void> {
  switch (write.kind) {
    case "clear": {
      // Exactly this mint's intent: one it left in place (older) stands for another mint's token.
      const [state] = await store.getStates([write.intent.profileId]);
      if (sameIntent(state?.intent ?? null, write.intent)) await store.endMint(write.intent.profileId, fence, write.intent.startedAt, write.resolvedNote);
      return;
    }
    case "record": {
      const { intent } = write;
      const [state] = await store.getStates([intent.profileId]);
      const standing = state?.intent ?? null;
      // No intent begun at or before this mint stands: a fresh mint or a revoke since resolved it.
      if (standing === null || standing.startedAt.getTime() > intent.startedAt.getTime()) return;
      // Never over newer state: a record a later mint created, or one revoked since this mint began.
      // Refused, the intents are resolved all the same (Deel's answer to this mint still stands for them).
      await store.putUnlessOvertaken(write.record, intent.startedAt, fence, write.note);
      // A replay says nothing of a token an older intent stands for; a fresh token replaced them all.
      if (!write.replayed || sameIntent(standing, intent)) await store.endMint(intent.profileId, fence, intent.startedAt, write.resolvedNote);
      return;
    }
    case "revoke": {
      const profileId = write.seen.record?.profileId ?? write.seen.intent?.profileId;
      if (profileId === undefined) return;
      const [state] = await store.getStates([profileId]);
      if (state === undefined || !sameIntent(state.intent, write.seen.intent)) return;
      const after = revokedFrom(write.seen, write.revokedAt, write.revokedBy);
      if (!sameRecord(state.record, write.seen.record) && !sameRecord(state.record, after)) return;
      await writeRevoke(store, profileId, write.seen, write, fence);
      return;
    }
  }
}

/** The writes one replica keeps, per profile, in the order they were kept. */
export class PendingWrites {
  private readonly byProfile = new Map<string, PendingWrite[]>();

  /** Writes kept, over every profile. */
  get size(): number {
    let n = 0;
    for (const writes of this.byProfile.values()) n += writes.length;
    return n;
  }

  /** Profiles with writes kept. */
  profiles(): string[] {
    return [...this.byProfile.keys()];
  }

  keep(profileId: string, write: PendingWrite): void {
    const writes = this.byProfile.get(profileId);
    if (writes === undefined) this.byProfile.set(profileId, [write]);
    else writes.push(write);
  }

  /**
   * Applies the profile's kept writes in order, in the caller's turn on the profile. One that fails
   * stays, with every later one, and the failure is thrown (the store is still away).
   */
  async flush(store: SessionStore, profileId: string, fence: Fence): Promise<void> {
    const writes = this.byProfile.get(profileId);
    while (writes !== undefined && writes.length > 0) {
      await apply(store, writes[0]!, fence);
      writes.shift();
    }
    if (this.byProfile.get(profileId)?.length === 0) this.byProfile.delete(profileId);
  }
}
