/**
 * The kill switch's contract (test/support/job-store-contract.ts) on SQLite: a temp file with a
 * second connection on it as the other replica, and `:memory:` (what `memory:` opens).
 */
import { createStorage } from "../../src/sessions/create-store.js";
import { LedgerJobStore } from "../../src/sessions/jobs/ledger-job-store.js";
import type { Clock } from "../../src/base/clock.js";
import type { Storage } from "../../src/storage/storage.js";
import { creatorIndexContract, jobStoreContract } from "../support/job-store-contract.js";
import { memoryLedgerBackend, sqliteLedger, tempSqliteFile } from "../support/sqlite-ledger.js";

const NOW = Date.parse("2026-03-02T10:20:30.456Z");

/** The leases' clock: fixed, moved on by the contract's passTime. */
function fakeClock(): { clock: Clock; passTime: (ms: number) => Promise<void> } {
  let now = NOW;
  return {
    clock: { now: () => now, sleep: async () => undefined },
    passTime: async (ms) => {
      now += ms;
    },
  };
}

function jobsOn(storage: Storage, clock: Clock): LedgerJobStore {
  return new LedgerJobStore(storage, { retentionMs: null, clock, ownsStorage: true });
}

creatorIndexContract("SQLite :memory:", async () => memoryLedgerBackend(NOW));

jobStoreContract("SQLite :memory:", async () => {
  const { clock, passTime } = fakeClock();
  const jobs = jobsOn(createStorage({ kind: "memory" }, { clock }), clock);
  return { jobs, other: async () => jobs, passTime, close: () => jobs.close() };
});

creatorIndexContract("SQLite", async () => sqliteLedger(NOW));

jobStoreContract("SQLite", async () => {
  const file = tempSqliteFile("wsg-jobs-");
  const { clock, passTime } = fakeClock();
  const open = () => jobsOn(createStorage({ kind: "sqlite", path: file.path }, { clock }), clock);
  const jobs = open();
  const others: LedgerJobStore[] = [];
  return {
    jobs,
    passTime,
    async other() {
      const other = open();
      others.push(other);
      return other;
    },
    async close() {
      for (const other of others) await other.close();
      await jobs.close();
      file.remove();
    },
  };
});
