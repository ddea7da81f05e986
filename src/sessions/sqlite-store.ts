import type Database from "better-sqlite3";
import type { Clock } from "../base/clock.js";
import { keyNames } from "../redis/keys.js";
import { SqliteStorage } from "../storage/sqlite-storage.js";
import type { FailureMapper, Write } from "../storage/storage.js";
import { WORKER_TOKEN_LIFETIME_MS } from "./intent.js";
import { upgradeJobTables } from "./jobs/sqlite-job-store.js";
import { encodeIntent, encodeRecord } from "./ledger-codec.js";

interface SessionRow {
  profile_id: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  created_by: string;
  revoked_by: string | null;
}

interface IntentRow {
  profile_id: string;
  created_by: string;
  started_at: number;
}

/** Whether `table` exists in the file. */
function hasTable(db: Database.Database, table: string): boolean {
  return db.prepare<[string], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

/**
 * Moves the ledger of an earlier release (tables `worker_sessions` and `mint_intents`, one row per
 * profile) into the storage's keys, exactly as this release writes them: a record per profile with
 * no expiry (SQLite keeps records until replaced), the createdBy index, and each intent with a token
 * lifetime from now (reads ignore one older than that anyway). The old tables are kept, renamed
 * `*_v1`, for whoever wants to look; nothing reads them again.
 */
export function upgradeLedgerTables(db: Database.Database, apply: (writes: readonly Write[]) => void, now: number): void {
  if (hasTable(db, "worker_sessions")) {
    const writes: Write[] = [];
    for (const row of db.prepare<[], SessionRow>("SELECT * FROM worker_sessions").iterate()) {
      const record = {
        profileId: row.profile_id,
        createdAt: new Date(row.created_at),
        expiresAt: new Date(row.expires_at),
        revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at),
        createdBy: row.created_by,
        revokedBy: row.revoked_by,
      };
      writes.push({ op: "put", key: keyNames.session(record.profileId), value: encodeRecord(record) });
      writes.push({ op: "addMember", key: keyNames.creator(record.createdBy), member: record.profileId });
    }
    apply(writes);
    db.exec("ALTER TABLE worker_sessions RENAME TO worker_sessions_v1");
  }
  if (hasTable(db, "mint_intents")) {
    const writes: Write[] = [];
    for (const row of db.prepare<[], IntentRow>("SELECT * FROM mint_intents").iterate()) {
      const intent = { profileId: row.profile_id, createdBy: row.created_by, startedAt: new Date(row.started_at) };
      writes.push({ op: "put", key: keyNames.intent(intent.profileId), value: encodeIntent(intent), expireAt: now + WORKER_TOKEN_LIFETIME_MS });
    }
    apply(writes);
    db.exec("ALTER TABLE mint_intents RENAME TO mint_intents_v1");
  }
}

export interface SqliteLedgerOptions {
  clock: Clock;
  fail: FailureMapper;
}

/**
 * Opens the ledger's SQLite storage (`sqlite:<path>`, or `:memory:` for `memory:`), first moving in
 * whatever an earlier release left in the file (the ledger's tables and the jobs' tables), once.
 */
export function openSqliteStorage(path: string, options: SqliteLedgerOptions): SqliteStorage {
  return new SqliteStorage(path, {
    clock: options.clock,
    fail: options.fail,
    upgrade: (db, apply) => {
      upgradeLedgerTables(db, apply, options.clock.now());
      upgradeJobTables(db, apply);
    },
  });
}
