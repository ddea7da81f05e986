/**
 * The kill switch's contract (test/support/job-store-contract.ts) on the in-process backends: memory,
 * and SQLite on a temp file with a second connection on it as the other replica.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryJobStore } from "../../src/sessions/jobs/memory-job-store.js";
import { SqliteJobStore } from "../../src/sessions/jobs/sqlite-job-store.js";
import { MemorySessionStore } from "../../src/sessions/memory-store.js";
import { creatorIndexContract, jobStoreContract } from "../support/job-store-contract.js";
import { sqliteLedger } from "../support/sqlite-ledger.js";

const NOW = Date.parse("2026-03-02T10:20:30.456Z");

creatorIndexContract("memory", async () => {
  const store = new MemorySessionStore();
  return { store, otherWriter: async () => store, now: () => NOW, close: () => store.close() };
});

/** The leases' clock: fixed, moved on by the contract's passTime. */
function fakeClock(): { now: () => number; passTime: (ms: number) => Promise<void> } {
  let now = NOW;
  return {
    now: () => now,
    passTime: async (ms) => {
      now += ms;
    },
  };
}

jobStoreContract("memory", async () => {
  const clock = fakeClock();
  const jobs = new MemoryJobStore(clock.now);
  return { jobs, other: async () => jobs, passTime: clock.passTime, close: () => jobs.close() };
});

function tempFile(): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "wsg-jobs-"));
  return { path: join(dir, "ledger.db"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

creatorIndexContract("SQLite", async () => sqliteLedger(NOW));

jobStoreContract("SQLite", async () => {
  const file = tempFile();
  const clock = fakeClock();
  const jobs = new SqliteJobStore(file.path, clock.now);
  const others: SqliteJobStore[] = [];
  return {
    jobs,
    passTime: clock.passTime,
    async other() {
      const other = new SqliteJobStore(file.path, clock.now);
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
