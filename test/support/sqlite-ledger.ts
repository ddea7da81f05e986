import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteSessionStore } from "../../src/sessions/sqlite-store.js";
import type { StoreBackend } from "./store-contract.js";

/**
 * A SQLite ledger on a temp file for the shared contracts, with a second connection on the same
 * file as the other writer; records are written at `now`. Closing removes the file.
 */
export function sqliteLedger(now: number): StoreBackend {
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
    now: () => now,
    async close() {
      for (const other of others) await other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
