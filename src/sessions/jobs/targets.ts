/**
 * Target selection for revocation jobs: which profiles of the ledger a job's filters match right
 * now. Promises: candidates come from the ledger's createdBy index (narrowed to `profileIds` when
 * both are set) or from `profileIds` alone (deduplicated); each is read through the service in
 * batches of READ_BATCH and kept only if it has a session, was minted by `createdBy` (when set) and,
 * with `onlyActive`, is ACTIVE or UNKNOWN. Order follows the candidates'.
 */
import type { WorkerSessionService } from "../service.js";
import type { SessionStore } from "../store.js";
import type { RevocationFilters } from "./job.js";

/** Ledger reads are made in batches of this many ids. */
export const READ_BATCH = 500;

/** The profiles whose sessions match the filters now. */
export async function matchingTargets(store: SessionStore, sessions: Pick<WorkerSessionService, "read">, filters: RevocationFilters): Promise<string[]> {
  let candidates: string[];
  if (filters.createdBy !== null) {
    candidates = (await store.listByCreator(filters.createdBy)).map((record) => record.profileId);
    if (filters.profileIds !== null) {
      const named = new Set(filters.profileIds);
      candidates = candidates.filter((id) => named.has(id));
    }
  } else {
    candidates = [...new Set(filters.profileIds ?? [])];
  }
  const matched: string[] = [];
  for (let start = 0; start < candidates.length; start += READ_BATCH) {
    const batch = candidates.slice(start, start + READ_BATCH);
    const entries = await sessions.read(batch);
    for (const [i, entry] of entries.entries()) {
      if (entry === null || entry === undefined) continue;
      if (filters.createdBy !== null && entry.record.createdBy !== filters.createdBy) continue;
      if (filters.onlyActive && entry.status !== "ACTIVE" && entry.status !== "UNKNOWN") continue;
      matched.push(batch[i] as string);
    }
  }
  return matched;
}
