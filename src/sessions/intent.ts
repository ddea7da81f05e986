import { statusOf, type SessionRecord, type SessionStatus } from "./record.js";

/**
 * A mint under way: written to the ledger before the gateway asks Deel for a token, cleared once
 * the answer is recorded (or Deel said no). An intent that outlives the mint's deadline means the
 * process died, or lost the answer, between Deel's 201 and the ledger write: Deel may hold a live
 * token the ledger cannot describe.
 */
export interface MintIntent {
  profileId: string;
  /** The caller's `sub`. */
  createdBy: string;
  startedAt: Date;
}

/** How long a worker token lives at Deel: the longest a token behind a lost answer can matter. */
export const WORKER_TOKEN_LIFETIME_MS = 24 * 3600 * 1000;

/** A profile's state as reads show it: the ledger's record, or what an unresolved intent implies. */
export interface LedgerEntry {
  record: SessionRecord;
  status: SessionStatus;
}

/**
 * What a read answers for one profile. An intent younger than `staleAfterMs` belongs to a mint
 * still in flight: the record stands as it is. An older one means a token may exist at Deel that
 * the ledger does not know: UNKNOWN, described by the intent (who, when, and the latest it could
 * expire), until a revoke or a later create resolves it.
 */
export function ledgerEntry(record: SessionRecord | null, intent: MintIntent | null, now: Date, staleAfterMs: number): LedgerEntry | null {
  if (intent !== null && now.getTime() - intent.startedAt.getTime() >= staleAfterMs) {
    return {
      status: "UNKNOWN",
      record: {
        profileId: intent.profileId,
        createdAt: intent.startedAt,
        expiresAt: new Date(intent.startedAt.getTime() + WORKER_TOKEN_LIFETIME_MS),
        revokedAt: null,
        createdBy: intent.createdBy,
        revokedBy: null,
      },
    };
  }
  if (record === null) return null;
  return { record, status: statusOf(record, now) };
}
