import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { systemClock, type Clock } from "../base/clock.js";
import { defaultFailure, type Condition, type FailureMapper, type OrderedItem, type PageRequest, type Storage, type Write } from "./storage.js";

export interface SqliteStorageOptions {
  /** Judges expiry. Default: the system clock. */
  clock?: Clock;
  /** The error a failed statement becomes. Default: StorageUnavailableError. */
  fail?: FailureMapper;
  /**
   * Runs once per open, inside the transaction that creates the tables: moves what an earlier layout
   * of the same file holds into this one (`apply` writes unconditionally), then retires the old
   * tables. Concurrent openers of one file run it one after the other; the second finds nothing left.
   */
  upgrade?: (db: Database.Database, apply: (writes: readonly Write[]) => void) => void;
}

interface KeyRow {
  key: string;
  value: string | null;
}

/** Above this many keys, `get` sends them as one JSON array instead of one statement per list length. */
const MAX_LISTED_KEYS = 32;

/**
 * Opens (creating its folder and file on first use) a SQLite database: WAL, so several processes
 * may share the file; NORMAL sync; a 2 s wait for a busy writer.
 */
function openDatabase(path: string): Database.Database {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 2000");
  return db;
}

/**
 * The storage in one SQLite file (`SESSION_STORE_URL=sqlite:<path>`), or in process memory
 * (`memory:` is `:memory:`: one connection, gone on close). Three tables: `storage_keys` holds every
 * key with its expiry, and a string key's value; `storage_items` holds the fields of maps and the
 * members of sets; `storage_ordered` the items of ordered keys (SQLite compares TEXT byte by byte). An expired key reads as absent and is removed when next written (and on open).
 *
 * better-sqlite3 is synchronous: a commit is one IMMEDIATE transaction, so its conditions and
 * writes are atomic against every other connection on the file. A read of one key, or of a short
 * list, is one prepared statement on the primary key.
 */
export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly fail: FailureMapper;
  private readonly byCount = new Map<number, Database.Statement<unknown[], KeyRow>>();
  private readonly statements;

  constructor(path: string, options: SqliteStorageOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.fail = options.fail ?? defaultFailure;
    this.db = openDatabase(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS storage_keys (
        key TEXT PRIMARY KEY,
        value TEXT,
        expires_at INTEGER
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS storage_items (
        key TEXT NOT NULL,
        item TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (key, item)
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS storage_ordered (
        key TEXT NOT NULL,
        position TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (key, position)
      ) STRICT, WITHOUT ROWID;
    `);
    const live = "(expires_at IS NULL OR expires_at > @now)";
    this.statements = {
      one: this.db.prepare<[{ key: string; now: number }], KeyRow>(`SELECT key, value FROM storage_keys WHERE key = @key AND ${live}`),
      listed: this.db.prepare<[{ keys: string; now: number }], KeyRow>(
        `SELECT key, value FROM storage_keys WHERE key IN (SELECT value FROM json_each(@keys)) AND ${live}`,
      ),
      items: this.db.prepare<[{ key: string; now: number }], { item: string; value: string }>(
        `SELECT item, value FROM storage_items WHERE key = @key AND EXISTS (SELECT 1 FROM storage_keys WHERE key = @key AND ${live})`,
      ),
      item: this.db.prepare<[{ key: string; item: string; now: number }], { value: string }>(
        `SELECT value FROM storage_items WHERE key = @key AND item = @item AND EXISTS (SELECT 1 FROM storage_keys WHERE key = @key AND ${live})`,
      ),
      expiry: this.db.prepare<[string], { expires_at: number | null }>("SELECT expires_at FROM storage_keys WHERE key = ?"),
      deleteKey: this.db.prepare<[string]>("DELETE FROM storage_keys WHERE key = ?"),
      deleteItems: this.db.prepare<[string]>("DELETE FROM storage_items WHERE key = ?"),
      deleteOrdered: this.db.prepare<[string]>("DELETE FROM storage_ordered WHERE key = ?"),
      putOrdered: this.db.prepare<[string, string, string]>("INSERT OR REPLACE INTO storage_ordered (key, position, value) VALUES (?, ?, ?)"),
      pruneOrdered: this.db.prepare<[string, string]>("DELETE FROM storage_ordered WHERE key = ? AND position < ?"),
      deleteOrderedItem: this.db.prepare<[string, string]>("DELETE FROM storage_ordered WHERE key = ? AND position = ?"),
      anyOrdered: this.db.prepare<[string], { one: number }>("SELECT 1 AS one FROM storage_ordered WHERE key = ? LIMIT 1"),
      page: this.db.prepare<[{ key: string; below: string | null; above: string | null; limit: number; now: number }], OrderedItem>(
        `SELECT position, value FROM storage_ordered
         WHERE key = @key AND (@below IS NULL OR position < @below) AND (@above IS NULL OR position > @above)
           AND EXISTS (SELECT 1 FROM storage_keys WHERE key = @key AND ${live})
         ORDER BY position DESC LIMIT @limit`,
      ),
      putValue: this.db.prepare<[string, string, number | null]>("INSERT OR REPLACE INTO storage_keys (key, value, expires_at) VALUES (?, ?, ?)"),
      container: this.db.prepare<[string]>("INSERT INTO storage_keys (key, value, expires_at) VALUES (?, NULL, NULL) ON CONFLICT DO NOTHING"),
      putItem: this.db.prepare<[string, string, string]>("INSERT OR REPLACE INTO storage_items (key, item, value) VALUES (?, ?, ?)"),
      deleteItem: this.db.prepare<[string, string]>("DELETE FROM storage_items WHERE key = ? AND item = ?"),
      anyItem: this.db.prepare<[string], { one: number }>("SELECT 1 AS one FROM storage_items WHERE key = ? LIMIT 1"),
      expire: this.db.prepare<[number, string]>("UPDATE storage_keys SET expires_at = ? WHERE key = ?"),
      purgeItems: this.db.prepare<[number]>(
        "DELETE FROM storage_items WHERE key IN (SELECT key FROM storage_keys WHERE expires_at IS NOT NULL AND expires_at <= ?)",
      ),
      purgeOrdered: this.db.prepare<[number]>(
        "DELETE FROM storage_ordered WHERE key IN (SELECT key FROM storage_keys WHERE expires_at IS NOT NULL AND expires_at <= ?)",
      ),
      purgeKeys: this.db.prepare<[number]>("DELETE FROM storage_keys WHERE expires_at IS NOT NULL AND expires_at <= ?"),
      ping: this.db.prepare("SELECT 1"),
    };
    this.db
      .transaction(() => {
        options.upgrade?.(this.db, (writes) => this.apply(writes, this.clock.now()));
        const now = this.clock.now();
        this.statements.purgeItems.run(now);
        this.statements.purgeOrdered.run(now);
        this.statements.purgeKeys.run(now);
      })
      .immediate();
  }

  async get(keys: readonly string[]): Promise<Array<string | null>> {
    try {
      const now = this.clock.now();
      if (keys.length === 0) return [];
      if (keys.length === 1) {
        const row = this.statements.one.get({ key: keys[0] as string, now });
        return [row?.value ?? null];
      }
      const rows = keys.length <= MAX_LISTED_KEYS ? this.listedStatement(keys.length).all(...keys, now) : this.statements.listed.all({ keys: JSON.stringify(keys), now });
      const byKey = new Map<string, string | null>();
      for (const row of rows) byKey.set(row.key, row.value);
      return keys.map((key) => byKey.get(key) ?? null);
    } catch (error) {
      throw this.fail("get", error);
    }
  }

  async fields(key: string, names?: readonly string[]): Promise<Map<string, string>> {
    try {
      const now = this.clock.now();
      const found = new Map<string, string>();
      if (names === undefined) {
        for (const row of this.statements.items.all({ key, now })) found.set(row.item, row.value);
        return found;
      }
      for (const item of names) {
        const row = this.statements.item.get({ key, item, now });
        if (row !== undefined) found.set(item, row.value);
      }
      return found;
    } catch (error) {
      throw this.fail("fields", error);
    }
  }

  async members(key: string): Promise<string[]> {
    try {
      return this.statements.items.all({ key, now: this.clock.now() }).map((row) => row.item);
    } catch (error) {
      throw this.fail("members", error);
    }
  }

  async isMember(key: string, member: string): Promise<boolean> {
    try {
      return this.statements.item.get({ key, item: member, now: this.clock.now() }) !== undefined;
    } catch (error) {
      throw this.fail("isMember", error);
    }
  }

  async pages(requests: readonly PageRequest[]): Promise<OrderedItem[][]> {
    try {
      if (requests.length === 0) return [];
      const now = this.clock.now();
      // One read transaction: every page sees the same state, as one Redis pipeline or one PostgreSQL statement would.
      return this.db.transaction(() =>
        requests.map((request) =>
          this.statements.page.all({ key: request.key, below: request.below ?? null, above: request.above ?? null, limit: Math.max(0, Math.floor(request.limit)), now }),
        ),
      )();
    } catch (error) {
      throw this.fail("pages", error);
    }
  }

  async commit(conditions: readonly Condition[], writes: readonly Write[]): Promise<boolean> {
    try {
      return this.db
        .transaction(() => {
          const now = this.clock.now();
          for (const condition of conditions) {
            if (this.current(condition, now) !== condition.equals) return false;
          }
          this.apply(writes, now);
          return true;
        })
        .immediate();
    } catch (error) {
      throw this.fail("commit", error);
    }
  }

  async ping(): Promise<void> {
    try {
      this.statements.ping.get();
    } catch (error) {
      throw this.fail("ping", error);
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private current(condition: Condition, now: number): string | null {
    if (condition.field === undefined) return this.statements.one.get({ key: condition.key, now })?.value ?? null;
    return this.statements.item.get({ key: condition.key, item: condition.field, now })?.value ?? null;
  }

  /** Applies writes inside the caller's transaction, as Redis would: expired keys are gone first. */
  private apply(writes: readonly Write[], now: number): void {
    const s = this.statements;
    for (const write of writes) {
      this.forgetIfExpired(write.key, now);
      switch (write.op) {
        case "put":
          this.dropContents(write.key);
          if (write.expireAt !== undefined && write.expireAt <= now) s.deleteKey.run(write.key);
          else s.putValue.run(write.key, write.value, write.expireAt ?? null);
          break;
        case "delete":
          this.dropContents(write.key);
          s.deleteKey.run(write.key);
          break;
        case "setField":
          s.container.run(write.key);
          s.putItem.run(write.key, write.field, write.value);
          break;
        case "addMember":
          s.container.run(write.key);
          s.putItem.run(write.key, write.member, "");
          break;
        case "removeMember":
          s.deleteItem.run(write.key, write.member);
          // An empty set is no set, as in Redis.
          if (s.anyItem.get(write.key) === undefined) s.deleteKey.run(write.key);
          break;
        case "expireAt": {
          const row = s.expiry.get(write.key);
          if (row === undefined) break;
          if (write.at <= now) {
            this.dropContents(write.key);
            s.deleteKey.run(write.key);
          } else if (!write.extendOnly || row.expires_at === null || row.expires_at < write.at) {
            s.expire.run(write.at, write.key);
          }
          break;
        }
        case "addItem":
          s.container.run(write.key);
          s.putOrdered.run(write.key, write.position, write.value);
          if (write.pruneBelow !== undefined) {
            s.pruneOrdered.run(write.key, write.pruneBelow);
            if (s.anyOrdered.get(write.key) === undefined) s.deleteKey.run(write.key);
          }
          break;
        case "removeItem":
          s.deleteOrderedItem.run(write.key, write.position);
          if (s.anyOrdered.get(write.key) === undefined && s.anyItem.get(write.key) === undefined) s.deleteKey.run(write.key);
          break;
        default:
          write satisfies never;
      }
    }
  }

  private forgetIfExpired(key: string, now: number): void {
    const row = this.statements.expiry.get(key);
    if (row !== undefined && row.expires_at !== null && row.expires_at <= now) {
      this.dropContents(key);
      this.statements.deleteKey.run(key);
    }
  }

  /** Removes a key's fields, members and items (the key's row stays to the caller). */
  private dropContents(key: string): void {
    this.statements.deleteItems.run(key);
    this.statements.deleteOrdered.run(key);
  }

  /** One prepared statement per list length: `IN (?, ?, …)` on the primary key, no JSON. */
  private listedStatement(count: number): Database.Statement<unknown[], KeyRow> {
    let statement = this.byCount.get(count);
    if (statement === undefined) {
      const marks = Array.from({ length: count }, () => "?").join(", ");
      statement = this.db.prepare<unknown[], KeyRow>(`SELECT key, value FROM storage_keys WHERE key IN (${marks}) AND (expires_at IS NULL OR expires_at > ?)`);
      this.byCount.set(count, statement);
    }
    return statement;
  }
}
