import type { Clock } from "../../base/clock.js";
import type { Storage } from "../../storage/storage.js";
import type { JobStore } from "./job-store.js";
import { LedgerJobStore } from "./ledger-job-store.js";

/**
 * Opens the revocation jobs' store on the ledger's storage (`SESSION_STORE_URL`), beside the ledger:
 * a job outlives the replica that started it wherever the ledger does. `retentionMs` as the
 * ledger's (null: for ever). The storage stays its owner's to close.
 */
export function createJobStore(storage: Storage, options: { retentionMs: number | null; clock?: Clock }): JobStore {
  return new LedgerJobStore(storage, options);
}
