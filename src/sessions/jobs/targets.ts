/**
 * Target selection for revocation jobs: which profiles of the ledger a job's filters match right
 * now. Promises:
 *
 * - Candidates: with `createdBy`, the ledger's createdBy index (records) and the index of that
 *   caller's mints (intents: in flight, or lost), narrowed to `profileIds` when both are set;
 *   otherwise `profileIds` alone (deduplicated).
 * - A candidate with an unresolved intent that may still be live is a target whatever its record
 *   says: a mint is in flight (its revoke waits for the profile's turn, so it lands after the mint
 *   ends) or its answer was lost (a token may exist: UNKNOWN). With `createdBy`, only an intent that
 *   stands for a mint by that caller (`SessionStore.listIntentsByCreator`).
 * - Otherwise a candidate with a record is a target when it was minted by `createdBy` (when set) and,
 *   with `onlyActive`, is ACTIVE at `now`.
 *
 * Records and intents are read in batches of READ_BATCH, in one round trip each; order follows the candidates'.
 */
import { intentMayBeLive } from "../intent.js";
import { statusOf } from "../record.js";
import type { SessionStore } from "../store.js";
import type { RevocationFilters } from "./job.js";

/** Ledger reads are made in batches of this many ids. */
export const READ_BATCH = 500;

/** The profiles whose sessions (or mints under way or lost) match the filters at `now` (epoch ms). */
export async function matchingTargets(store: SessionStore, filters: RevocationFilters, now: number): Promise<string[]> {
  let candidates: string[];
  /** With `createdBy`: profiles whose standing intent stands for a mint by that caller. */
  let mintedBy: Set<string> | null = null;
  if (filters.createdBy !== null) {
    const intents = await store.listIntentsByCreator(filters.createdBy);
    mintedBy = new Set(intents.map((intent) => intent.profileId));
    const records = (await store.listByCreator(filters.createdBy)).map((record) => record.profileId);
    candidates = [...new Set([...records, ...mintedBy])];
    if (filters.profileIds !== null) {
      const named = new Set(filters.profileIds);
      candidates = candidates.filter((id) => named.has(id));
    }
  } else {
    candidates = [...new Set(filters.profileIds ?? [])];
  }
  const at = new Date(now);
  const matched: string[] = [];
  for (let start = 0; start < candidates.length; start += READ_BATCH) {
    const batch = candidates.slice(start, start + READ_BATCH);
    const states = await store.getStates(batch);
    for (const [i, state] of states.entries()) {
      const profileId = batch[i] as string;
      const { record, intent } = state;
      if (intent !== null && intentMayBeLive(intent, at) && (mintedBy === null || mintedBy.has(profileId) || intent.createdBy === filters.createdBy)) {
        matched.push(profileId);
        continue;
      }
      if (record === null) continue;
      if (filters.createdBy !== null && record.createdBy !== filters.createdBy) continue;
      if (filters.onlyActive && statusOf(record, at) !== "ACTIVE") continue;
      matched.push(profileId);
    }
  }
  return matched;
}
