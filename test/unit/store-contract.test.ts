/**
 * The ledger contract (test/support/store-contract.ts) on SQLite: a temp file with a second
 * connection on it as the other writer, and `:memory:` (what `SESSION_STORE_URL=memory:` opens).
 * Both write records at a fixed instant. The same contract on Redis is an integration test
 * (test/integration/redis-store.test.ts).
 */
import { intentContract } from "../support/intent-contract.js";
import { memoryLedgerBackend, sqliteLedger } from "../support/sqlite-ledger.js";
import { storeContract, type StoreBackend } from "../support/store-contract.js";

const NOW = Date.parse("2026-03-02T10:20:30.456Z");
const IN_PROCESS = { roundTrips: false, retention: false, concurrentWriters: false };

// --- SQLite in memory (`memory:`): one connection, so the other writer is the same store ---------

async function memoryBackend(): Promise<StoreBackend> {
  return memoryLedgerBackend(NOW);
}

storeContract("SQLite :memory:", IN_PROCESS, memoryBackend);
intentContract("SQLite :memory:", memoryBackend);

// --- SQLite: a temp file, and a second connection on it as the other writer ---------------------

async function sqliteBackend(): Promise<StoreBackend> {
  return sqliteLedger(NOW);
}

storeContract("SQLite", IN_PROCESS, sqliteBackend);
intentContract("SQLite", sqliteBackend);
