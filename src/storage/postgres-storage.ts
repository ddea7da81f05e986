import { systemClock, type Clock } from "../base/clock.js";
import { closePostgresPool, type Pool } from "../postgres/connection.js";
import { defaultFailure, type Condition, type FailureMapper, type OrderedItem, type PageRequest, type Storage, type Write } from "./storage.js";

export interface PostgresStorageOptions {
  /** Judges expiry (every replica's clock, as with SQLite). Default: the system clock. */
  clock?: Clock;
  /** The error a failed statement becomes. Default: StorageUnavailableError. */
  fail?: FailureMapper;
  /** End the pool in `close()` (true when the storage opened it itself). Default false. */
  ownsPool?: boolean;
}

const LIVE = "(expires_at IS NULL OR expires_at > $2)";
const LIVE_CONTAINER = "EXISTS (SELECT 1 FROM storage_keys s WHERE s.key = $1 AND (s.expires_at IS NULL OR s.expires_at > $2))";

/** Expired keys removed per statement by `purgeExpired`, so one sweep never holds the tables long. */
const PURGE_BATCH = 1000;

/**
 * The storage in PostgreSQL (`SESSION_STORE_URL=postgres://…`), shared by every replica: the tables
 * of migrations 1 and 3 (postgres/migrations.ts), in the deployment's schema. Reads are one statement each
 * (`get` is one `= ANY($1)`, whatever the number of keys); `commit` is one call of the generic
 * `storage_commit` function, atomic against every other commit on the keys it names. Expiry is
 * judged by the injected clock, as SQLite does; expired keys read as absent, are removed when next
 * written, and are swept in batches by `purgeExpired` (start-up and hourly, see shared-state.ts).
 * Every failure is the `fail` option's error; the pool fails fast (postgres/connection.ts).
 */
export class PostgresStorage implements Storage {
  private readonly pool: Pool;
  private readonly clock: Clock;
  private readonly fail: FailureMapper;
  private readonly ownsPool: boolean;

  /** `pool` must reach a schema that `migrate` brought up to date. */
  constructor(pool: Pool, options: PostgresStorageOptions = {}) {
    this.pool = pool;
    this.clock = options.clock ?? systemClock;
    this.fail = options.fail ?? defaultFailure;
    this.ownsPool = options.ownsPool ?? false;
  }

  async get(keys: readonly string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return [];
    const rows = await this.rows<{ key: string; value: string | null }>(
      "get",
      "wsg-storage-get",
      `SELECT key, value FROM storage_keys WHERE key = ANY($1) AND ${LIVE}`,
      [[...new Set(keys)], this.clock.now()],
    );
    const byKey = new Map<string, string | null>();
    for (const row of rows) byKey.set(row.key, row.value);
    return keys.map((key) => byKey.get(key) ?? null);
  }

  async fields(key: string, names?: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    if (names !== undefined && names.length === 0) return found;
    const rows =
      names === undefined
        ? await this.rows<{ item: string; value: string }>(
            "fields",
            "wsg-storage-fields",
            `SELECT item, value FROM storage_items WHERE key = $1 AND ${LIVE_CONTAINER}`,
            [key, this.clock.now()],
          )
        : await this.rows<{ item: string; value: string }>(
            "fields",
            "wsg-storage-named-fields",
            `SELECT item, value FROM storage_items WHERE key = $1 AND item = ANY($3) AND ${LIVE_CONTAINER}`,
            [key, this.clock.now(), [...names]],
          );
    for (const row of rows) found.set(row.item, row.value);
    return found;
  }

  async members(key: string): Promise<string[]> {
    const rows = await this.rows<{ item: string }>(
      "members",
      "wsg-storage-members",
      `SELECT item FROM storage_items WHERE key = $1 AND ${LIVE_CONTAINER}`,
      [key, this.clock.now()],
    );
    return rows.map((row) => row.item);
  }

  async isMember(key: string, member: string): Promise<boolean> {
    const rows = await this.rows<{ one: number }>(
      "isMember",
      "wsg-storage-is-member",
      `SELECT 1 AS one FROM storage_items WHERE key = $1 AND item = $3 AND ${LIVE_CONTAINER}`,
      [key, this.clock.now(), member],
    );
    return rows.length > 0;
  }

  /** One statement for every page: a LATERAL index scan per request, on `storage_ordered`'s primary key. */
  async pages(requests: readonly PageRequest[]): Promise<OrderedItem[][]> {
    if (requests.length === 0) return [];
    const asked = requests.map((r, i) => ({ i, key: r.key, below: r.below ?? null, above: r.above ?? null, lim: Math.max(0, Math.floor(r.limit)) }));
    const rows = await this.rows<{ i: number; position: string; value: string }>(
      "pages",
      "wsg-storage-pages",
      `SELECT r.i, o.position, o.value
         FROM jsonb_to_recordset($1::jsonb) AS r(i int, key text, below text, above text, lim int)
         CROSS JOIN LATERAL (
           SELECT position, value FROM storage_ordered o
            WHERE o.key = r.key
              AND (r.below IS NULL OR o.position < r.below COLLATE "C")
              AND (r.above IS NULL OR o.position > r.above COLLATE "C")
              AND EXISTS (SELECT 1 FROM storage_keys s WHERE s.key = r.key AND (s.expires_at IS NULL OR s.expires_at > $2))
            ORDER BY o.position DESC
            LIMIT r.lim
         ) o
        ORDER BY r.i, o.position DESC`,
      [JSON.stringify(asked), this.clock.now()],
    );
    const pages: OrderedItem[][] = requests.map(() => []);
    for (const row of rows) pages[row.i]?.push({ position: row.position, value: row.value });
    return pages;
  }

  async commit(conditions: readonly Condition[], writes: readonly Write[]): Promise<boolean> {
    const checks = conditions.map((c) => ({ key: c.key, field: c.field ?? null, equals: c.equals }));
    const rows = await this.rows<{ written: boolean }>("commit", "wsg-storage-commit", "SELECT storage_commit($1::jsonb, $2::jsonb, $3) AS written", [
      JSON.stringify(checks),
      JSON.stringify(writes),
      this.clock.now(),
    ]);
    return rows[0]?.written === true;
  }

  /** Rejects at once when no connection can be made, or after the timeouts when PostgreSQL does not answer. */
  async ping(): Promise<void> {
    await this.rows("ping", "wsg-storage-ping", "SELECT 1", []);
  }

  /**
   * Removes keys whose expiry has passed (they already read as absent), in batches; resolves to how
   * many. Redis does this by itself; here it keeps the tables from growing with retired records.
   */
  async purgeExpired(maxBatches = 100): Promise<number> {
    let purged = 0;
    for (let batch = 0; batch < maxBatches; batch += 1) {
      const rows = await this.rows<{ n: number }>(
        "purgeExpired",
        "wsg-storage-purge",
        `WITH gone AS (
           DELETE FROM storage_keys WHERE key IN (
             SELECT key FROM storage_keys WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT ${PURGE_BATCH} FOR UPDATE SKIP LOCKED
           ) AND expires_at <= $1 RETURNING key
         ), items AS (
           DELETE FROM storage_items WHERE key IN (SELECT key FROM gone)
         ), ordered AS (
           DELETE FROM storage_ordered WHERE key IN (SELECT key FROM gone)
         )
         SELECT count(*)::int AS n FROM gone`,
        [this.clock.now()],
      );
      const n = rows[0]?.n ?? 0;
      purged += n;
      if (n < PURGE_BATCH) break;
    }
    return purged;
  }

  async close(): Promise<void> {
    if (this.ownsPool) await closePostgresPool(this.pool);
  }

  private async rows<R extends object>(operation: string, name: string, text: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>({ name, text, values })).rows;
    } catch (error) {
      throw this.fail(operation, error);
    }
  }
}
