/**
 * The ledger contract (test/support/store-contract.ts) on the in-process stores: memory, and SQLite
 * on a temp file with a second connection on it as the other writer. Both write records at a fixed
 * instant. The same contract on Redis is an integration test (test/integration/redis-store.test.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemorySessionStore } from "../../src/sessions/memory-store.js";
import { SqliteSessionStore } from "../../src/sessions/sqlite-store.js";
import { storeContract } from "../support/store-contract.js";

const NOW = Date.parse("2026-03-02T10:20:30.456Z");

// --- memory: one map in this process, so the other writer is the same store ---------------------

storeContract("memory", { roundTrips: false, retention: false, concurrentWriters: false }, async () => {
  const store = new MemorySessionStore();
  return { store, otherWriter: async () => store, now: () => NOW, close: () => store.close() };
});

// --- SQLite: a temp file, and a second connection on it as the other writer ---------------------

storeContract("SQLite", { roundTrips: false, retention: false, concurrentWriters: false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "wsg-store-"));
  const path = join(dir, "ledger.db");
  const store = new SqliteSessionStore(path);
  const others: SqliteSessionStore[] = [];
  return {
    store,
    async otherWriter() {
      const other = new SqliteSessionStore(path);
      others.push(other);
      return other;
    },
    now: () => NOW,
    async close() {
      for (const other of others) await other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
