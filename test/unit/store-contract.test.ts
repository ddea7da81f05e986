/**
 * The ledger contract (test/support/store-contract.ts) on the in-process stores: memory, and SQLite
 * on a temp file with a second connection on it as the other writer. Both write records at a fixed
 * instant. The same contract on Redis is an integration test (test/integration/redis-store.test.ts).
 */
import { MemorySessionStore } from "../../src/sessions/memory-store.js";
import { intentContract } from "../support/intent-contract.js";
import { sqliteLedger } from "../support/sqlite-ledger.js";
import { storeContract, type StoreBackend } from "../support/store-contract.js";

const NOW = Date.parse("2026-03-02T10:20:30.456Z");

// --- memory: one map in this process, so the other writer is the same store ---------------------

async function memoryBackend(): Promise<StoreBackend> {
  const store = new MemorySessionStore();
  return { store, otherWriter: async () => store, now: () => NOW, close: () => store.close() };
}

storeContract("memory", { roundTrips: false, retention: false, concurrentWriters: false }, memoryBackend);
intentContract("memory", memoryBackend);

// --- SQLite: a temp file, and a second connection on it as the other writer ---------------------

async function sqliteBackend(): Promise<StoreBackend> {
  return sqliteLedger(NOW);
}

storeContract("SQLite", { roundTrips: false, retention: false, concurrentWriters: false }, sqliteBackend);
intentContract("SQLite", sqliteBackend);
