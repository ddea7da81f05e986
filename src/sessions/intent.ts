import { statusOf, type SessionRecord, type SessionStatus } from "./record.js";

/**
 * A mint under way: written to the ledger before the gateway asks Deel for a token, cleared once
 * the answer is recorded (or Deel surely minted nothing). An intent that outlives the mint's
 * deadline means the process died, or lost the answer, between Deel's 201 and the ledger write:
 * Deel may hold a live token the ledger cannot describe.
 *
 * A store keeps at most one intent per profile: the OLDEST unresolved one that may still be live.
 * A later mint that begins while it stands leaves it in place (its own possible token is younger,
 * so "a token may exist since then" still describes both), and only a fresh session recorded by a
 * mint that began at or after it clears it (Deel's new token replaced every older one). A later
 * mint that minted nothing, or that Deel answered with a replay, leaves it alone. Known limit of
 * keeping one start time: the 24 h after which an intent is ignored count from the oldest start, so
 * when a later mint's answer is lost too, its token could outlive the UNKNOWN by up to the time
 * between the two starts (a store keeping the latest start as well would close that gap).
 */
export interface MintIntent {
  profileId: string;
  /** The caller's `sub`. */
  createdBy: string;
  startedAt: Date;
}

/** How long a worker token lives at Deel: the longest a token behind a lost answer can matter. */
export const WORKER_TOKEN_LIFETIME_MS = 24 * 3600 * 1000;

/**
 * How old an unresolved intent must be before reads answer UNKNOWN: past the Deel deadline, plus a
 * margin, no create can still be waiting on Deel for it. The one place this is decided.
 */
export function intentStaleAfterMs(deelTimeoutMs: number): number {
  return deelTimeoutMs + 1000;
}

/** A profile's state as reads show it: the ledger's record, or what an unresolved intent implies. */
export interface LedgerEntry {
  record: SessionRecord;
  status: SessionStatus;
}

/**
 * The session an unresolved intent stands for, as far as the ledger can tell: minted by its caller
 * when it began, expiring at the latest a token minted then could (never revoked, as far as known).
 */
export function recordFromIntent(intent: MintIntent): SessionRecord {
  return {
    profileId: intent.profileId,
    createdAt: intent.startedAt,
    expiresAt: new Date(intent.startedAt.getTime() + WORKER_TOKEN_LIFETIME_MS),
    revokedAt: null,
    createdBy: intent.createdBy,
    revokedBy: null,
  };
}

/**
 * Whether an intent may still stand for a live token at `now`: one begun `WORKER_TOKEN_LIFETIME_MS`
 * ago or more stands for nothing (any token it stood for has expired at Deel), and is ignored in every
 * store alike (Redis also lets it expire by itself).
 */
export function intentMayBeLive(intent: MintIntent, now: Date): boolean {
  return now.getTime() - intent.startedAt.getTime() < WORKER_TOKEN_LIFETIME_MS;
}

/**
 * What a read answers for one profile. An intent younger than `staleAfterMs` belongs to a mint
 * still in flight: the record stands as it is. An older one means a token may exist at Deel that
 * the ledger does not know: UNKNOWN, described by the intent (who, when, and the latest it could
 * expire), until a revoke or a later create resolves it, or until that latest expiry has passed
 * (`WORKER_TOKEN_LIFETIME_MS` after it began: the record stands again).
 */
export function entryAt(record: SessionRecord | null, intent: MintIntent | null, now: Date, staleAfterMs: number): LedgerEntry | null {
  if (intent !== null && now.getTime() - intent.startedAt.getTime() >= staleAfterMs && intentMayBeLive(intent, now)) {
    return { status: "UNKNOWN", record: recordFromIntent(intent) };
  }
  if (record === null) return null;
  return { record, status: statusOf(record, now) };
}
