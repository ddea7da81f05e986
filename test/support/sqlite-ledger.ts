import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock } from "../../src/base/clock.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { Ledger } from "../../src/sessions/ledger.js";
import type { StoreBackend } from "./store-contract.js";

/** A clock standing still at `at` (epoch ms): expiries never depend on the wall clock. */
export function fixedClock(at: number): Clock {
  return { now: () => at, sleep: async () => undefined };
}

/** A temp folder for a SQLite file; `remove` deletes it. */
export function tempSqliteFile(label = "wsg-store-"): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), label));
  return { path: join(dir, "ledger.db"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A SQLite ledger on `path` (`:memory:` included), times judged by `clock`. */
export function sqliteLedgerAt(path: string, clock: Clock): Ledger {
  const storage = createStorage(path === ":memory:" ? { kind: "memory" } : { kind: "sqlite", path }, { clock });
  return new Ledger(storage, { retentionMs: null, clock });
}

/**
 * A SQLite ledger on a temp file for the shared contracts, with a second connection on the same
 * file as the other writer; records are written at `now`. Closing removes the file.
 */
export function sqliteLedger(now: number): StoreBackend {
  const file = tempSqliteFile();
  const clock = fixedClock(now);
  const store = sqliteLedgerAt(file.path, clock);
  const others: Ledger[] = [];
  return {
    store,
    async otherWriter() {
      const other = sqliteLedgerAt(file.path, clock);
      others.push(other);
      return other;
    },
    now: () => now,
    async close() {
      for (const other of others) await other.close();
      await store.close();
      file.remove();
    },
  };
}

/** A SQLite ledger in process memory (`memory:`): one connection, so the other writer is the same store. */
export function memoryLedgerBackend(now: number): StoreBackend {
  const store = sqliteLedgerAt(":memory:", fixedClock(now));
  return { store, otherWriter: async () => store, now: () => now, close: () => store.close() };
}
