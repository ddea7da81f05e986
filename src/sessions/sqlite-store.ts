import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { WORKER_TOKEN_LIFETIME_MS, type MintIntent } from "./intent.js";
import type { SessionRecord } from "./record.js";
import type { SessionStore } from "./store.js";

interface Row {
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

function toRecord(row: Row): SessionRecord {
  return {
    profileId: row.profile_id,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at),
    createdBy: row.created_by,
    revokedBy: row.revoked_by,
  };
}

/**
 * Opens (creating its folder and file on first use) a SQLite database as the ledger's stores use
 * it: WAL, so several processes may share the file; NORMAL sync; a 2 s wait for a busy writer.
 */
export function openSqlite(path: string): Database.Database {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 2000");
  return db;
}

/**
 * The default ledger (`SESSION_STORE_URL=sqlite:<path>`): one file, created on first use, in WAL
 * mode. Times are stored as epoch milliseconds. better-sqlite3 is synchronous; every statement
 * here touches one primary-key row or one `IN` list, so each call is short.
 */
export class SqliteSessionStore implements SessionStore {
  private readonly db: Database.Database;
  private readonly selectOne: Database.Statement<[string], Row>;
  private readonly selectMany: Database.Statement<[string], Row>;
  private readonly upsert: Database.Statement<[Row]>;
  private readonly revoke: Database.Statement<[number, string, string]>;
  private readonly intentUpsert: Database.Statement<[IntentRow & { lifetime_ms: number }]>;
  private readonly intentDelete: Database.Statement<[string]>;
  private readonly intentDeleteUpTo: Database.Statement<[string, number]>;
  private readonly intentSelectMany: Database.Statement<[string], IntentRow>;
  private readonly intentSelectOne: Database.Statement<[string], IntentRow>;
  private readonly selectByCreator: Database.Statement<[string], Row>;

  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS worker_sessions (
        profile_id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER,
        created_by TEXT NOT NULL,
        revoked_by TEXT
      ) STRICT
    `);
    this.selectOne = this.db.prepare("SELECT * FROM worker_sessions WHERE profile_id = ?");
    // One statement for any number of ids: the list travels as one JSON array parameter.
    this.selectMany = this.db.prepare(
      "SELECT * FROM worker_sessions WHERE profile_id IN (SELECT value FROM json_each(?))",
    );
    this.upsert = this.db.prepare(`
      INSERT INTO worker_sessions (profile_id, created_at, expires_at, revoked_at, created_by, revoked_by)
      VALUES (@profile_id, @created_at, @expires_at, @revoked_at, @created_by, @revoked_by)
      ON CONFLICT (profile_id) DO UPDATE SET
        created_at = excluded.created_at, expires_at = excluded.expires_at, revoked_at = excluded.revoked_at,
        created_by = excluded.created_by, revoked_by = excluded.revoked_by
    `);
    // The createdBy index (the kill switch lists a caller's sessions); a replaced row moves with it.
    this.db.exec("CREATE INDEX IF NOT EXISTS worker_sessions_created_by ON worker_sessions (created_by)");
    this.selectByCreator = this.db.prepare("SELECT * FROM worker_sessions WHERE created_by = ?");
    // Mints under way (see intent.ts): one row per profile at most, gone once resolved.
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS mint_intents (
        profile_id TEXT PRIMARY KEY,
        created_by TEXT NOT NULL,
        started_at INTEGER NOT NULL
      ) STRICT
    `);
    // The oldest unresolved intent stays (see SessionStore.beginMint): the update applies only over
    // a later intent or a dead one (begun a token lifetime or more before this one).
    this.intentUpsert = this.db.prepare(`
      INSERT INTO mint_intents (profile_id, created_by, started_at) VALUES (@profile_id, @created_by, @started_at)
      ON CONFLICT (profile_id) DO UPDATE SET created_by = excluded.created_by, started_at = excluded.started_at
      WHERE NOT (mint_intents.started_at <= excluded.started_at AND excluded.started_at - mint_intents.started_at < @lifetime_ms)
    `);
    this.intentDelete = this.db.prepare("DELETE FROM mint_intents WHERE profile_id = ?");
    this.intentDeleteUpTo = this.db.prepare("DELETE FROM mint_intents WHERE profile_id = ? AND started_at <= ?");
    this.intentSelectMany = this.db.prepare("SELECT * FROM mint_intents WHERE profile_id IN (SELECT value FROM json_each(?))");
    this.intentSelectOne = this.db.prepare("SELECT * FROM mint_intents WHERE profile_id = ?");
    this.revoke = this.db.prepare(
      "UPDATE worker_sessions SET revoked_at = ?, revoked_by = ? WHERE profile_id = ? AND revoked_at IS NULL",
    );
  }

  async get(profileId: string): Promise<SessionRecord | null> {
    const row = this.selectOne.get(profileId);
    return row === undefined ? null : toRecord(row);
  }

  async getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>> {
    if (profileIds.length === 0) return [];
    if (profileIds.length === 1) {
      // One id (one query, one entity): a primary-key lookup is cheaper than json_each.
      const row = this.selectOne.get(profileIds[0] as string);
      return [row === undefined ? null : toRecord(row)];
    }
    const byId = new Map<string, SessionRecord>();
    for (const row of this.selectMany.all(JSON.stringify(profileIds))) byId.set(row.profile_id, toRecord(row));
    return profileIds.map((id) => byId.get(id) ?? null);
  }

  async put(record: SessionRecord): Promise<void> {
    this.upsert.run({
      profile_id: record.profileId,
      created_at: record.createdAt.getTime(),
      expires_at: record.expiresAt.getTime(),
      revoked_at: record.revokedAt === null ? null : record.revokedAt.getTime(),
      created_by: record.createdBy,
      revoked_by: record.revokedBy,
    });
  }

  async markRevoked(profileId: string, revokedAt: Date, revokedBy: string): Promise<SessionRecord | null> {
    const row = this.db.transaction(() => {
      this.revoke.run(revokedAt.getTime(), revokedBy, profileId);
      return this.selectOne.get(profileId);
    })();
    return row === undefined ? null : toRecord(row);
  }

  async listByCreator(createdBy: string): Promise<SessionRecord[]> {
    return this.selectByCreator.all(createdBy).map(toRecord);
  }

  async beginMint(intent: MintIntent): Promise<boolean> {
    const { changes } = this.intentUpsert.run({
      profile_id: intent.profileId,
      created_by: intent.createdBy,
      started_at: intent.startedAt.getTime(),
      lifetime_ms: WORKER_TOKEN_LIFETIME_MS,
    });
    return changes > 0;
  }

  async endMint(profileId: string, upTo?: Date): Promise<void> {
    if (upTo === undefined) this.intentDelete.run(profileId);
    else this.intentDeleteUpTo.run(profileId, upTo.getTime());
  }

  async getIntents(profileIds: readonly string[]): Promise<Array<MintIntent | null>> {
    if (profileIds.length === 0) return [];
    if (profileIds.length === 1) {
      // The common read (one query, one entity): a primary-key lookup, as in getMany.
      const row = this.intentSelectOne.get(profileIds[0] as string);
      return [row === undefined ? null : { profileId: row.profile_id, createdBy: row.created_by, startedAt: new Date(row.started_at) }];
    }
    const byId = new Map<string, MintIntent>();
    for (const row of this.intentSelectMany.all(JSON.stringify(profileIds))) {
      byId.set(row.profile_id, { profileId: row.profile_id, createdBy: row.created_by, startedAt: new Date(row.started_at) });
    }
    return profileIds.map((id) => byId.get(id) ?? null);
  }

  async ping(): Promise<void> {
    this.db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
