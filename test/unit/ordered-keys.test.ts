/**
 * The ordered keys' contract (test/support/ordered-contract.ts) on SQLite, a temp file and `:memory:`, and the
 * session history's contract over the ledger (test/support/history-contract.ts).
 * The same contract on Redis and PostgreSQL is an integration test (test/integration/ordered-keys.test.ts).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStorage } from "../../src/storage/sqlite-storage.js";
import { historyContract } from "../support/history-contract.js";
import { orderedKeysContract } from "../support/ordered-contract.js";

orderedKeysContract("SQLite :memory:", async () => {
  const storage = new SqliteStorage(":memory:");
  return { storage, close: () => storage.close() };
});

orderedKeysContract("SQLite", async () => {
  const storage = new SqliteStorage(join(mkdtempSync(join(tmpdir(), "wsg-ordered-")), "ledger.db"));
  return { storage, close: () => storage.close() };
});

// The session history over the ledger, on the same storage (the test's clock judges expiry).
historyContract("SQLite :memory:", async (clock) => {
  const storage = new SqliteStorage(":memory:", { clock });
  return { storage, close: () => storage.close() };
});
