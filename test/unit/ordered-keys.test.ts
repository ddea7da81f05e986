/**
 * The ordered keys' contract (test/support/ordered-contract.ts) on SQLite: a temp file, and `:memory:`.
 * The same contract on Redis and PostgreSQL is an integration test (test/integration/ordered-keys.test.ts).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStorage } from "../../src/storage/sqlite-storage.js";
import { orderedKeysContract } from "../support/ordered-contract.js";

orderedKeysContract("SQLite :memory:", async () => {
  const storage = new SqliteStorage(":memory:");
  return { storage, close: () => storage.close() };
});

orderedKeysContract("SQLite", async () => {
  const storage = new SqliteStorage(join(mkdtempSync(join(tmpdir(), "wsg-ordered-")), "ledger.db"));
  return { storage, close: () => storage.close() };
});
