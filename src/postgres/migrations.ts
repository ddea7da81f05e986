/**
 * The gateway's PostgreSQL schema, as numbered migrations, and the one function that applies them.
 *
 * `schema_migrations` records each version applied. At start-up every replica calls `migrate`: it
 * takes a session advisory lock for the schema (so replicas starting at once migrate one after the
 * other, the second finding nothing left to do), applies each missing version in its own
 * transaction, and refuses to start on a schema that a newer release migrated past what this one
 * knows (its tables may mean something this code does not). A migration is never edited once
 * released; a change is a new version.
 */
import type { Pool } from "./connection.js";

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Version 1, the storage (storage/storage.ts): `storage_keys` holds every key with its expiry
 * (epoch ms, judged by the caller's clock) and a string key's value; `storage_items` holds the
 * fields of maps and the members of sets. `storage_commit` is the one conditional write: it locks
 * every key it names (transaction advisory locks, in one global order, so overlapping commits never
 * deadlock), checks every condition, then applies every write, in one statement. Generic, like the
 * Redis script: it knows the primitives and no rule of any of their users.
 *
 * Version 2, the organization's Deel budget (deel/postgres-budget.ts): one row holding the most
 * recent call slots, read and rewritten under its row lock.
 *
 * Version 3, the budget's departures: when calls actually left over the last window, beside the
 * plan, so a caller that wakes late checks what left before it goes (deel/postgres-budget.ts).
 *
 * Version 4, ordered keys (the session history of profiles and of revocation jobs,
 * sessions/history.ts): `storage_ordered` holds their items, one per position, positions compared
 * byte by byte (`COLLATE "C"`, as SQLite and Redis compare them); the key's own row in
 * `storage_keys` (no value) carries its expiry. `storage_commit` is replaced by the same function
 * with two more writes: `addItem` (adds or replaces the item at a position, then drops the key's
 * items below `pruneBelow`, and the key once none is left) and `removeItem` (drops one item, and the
 * key once it holds nothing). A write that clears a key (`put`, `delete`, an expiry reached or set
 * in the past) clears its ordered items with its fields and members.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "storage keys, items and the conditional write",
    sql: `
CREATE TABLE storage_keys (
  key text PRIMARY KEY,
  value text,
  expires_at bigint
);
CREATE INDEX storage_keys_expiry ON storage_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE storage_items (
  key text NOT NULL,
  item text NOT NULL,
  value text NOT NULL,
  PRIMARY KEY (key, item)
);

CREATE FUNCTION storage_commit(conditions jsonb, writes jsonb, now_ms bigint) RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $body$
DECLARE
  c jsonb;
  w jsonb;
  k text;
  actual text;
  expiry bigint;
  at_ms bigint;
BEGIN
  FOR k IN
    SELECT named.key FROM (
      SELECT e->>'key' AS key FROM jsonb_array_elements(conditions) e
      UNION SELECT e->>'key' FROM jsonb_array_elements(writes) e
    ) named
    ORDER BY hashtextextended(current_schema() || ':' || named.key, 0)
  LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || k, 0));
  END LOOP;

  FOR c IN SELECT * FROM jsonb_array_elements(conditions) LOOP
    k := c->>'key';
    IF c->>'field' IS NULL THEN
      SELECT s.value INTO actual FROM storage_keys s
        WHERE s.key = k AND (s.expires_at IS NULL OR s.expires_at > now_ms);
    ELSE
      SELECT i.value INTO actual FROM storage_items i JOIN storage_keys s ON s.key = i.key
        WHERE i.key = k AND i.item = c->>'field' AND (s.expires_at IS NULL OR s.expires_at > now_ms);
    END IF;
    IF NOT FOUND THEN actual := NULL; END IF;
    IF actual IS DISTINCT FROM c->>'equals' THEN RETURN false; END IF;
  END LOOP;

  FOR w IN SELECT * FROM jsonb_array_elements(writes) LOOP
    k := w->>'key';
    -- An expired key is gone before anything is written to it, as in Redis.
    IF EXISTS (SELECT 1 FROM storage_keys WHERE key = k AND expires_at <= now_ms) THEN
      DELETE FROM storage_items WHERE key = k;
      DELETE FROM storage_keys WHERE key = k;
    END IF;
    CASE w->>'op'
      WHEN 'put' THEN
        DELETE FROM storage_items WHERE key = k;
        IF w->>'expireAt' IS NOT NULL AND (w->>'expireAt')::bigint <= now_ms THEN
          DELETE FROM storage_keys WHERE key = k;
        ELSE
          INSERT INTO storage_keys (key, value, expires_at) VALUES (k, w->>'value', (w->>'expireAt')::bigint)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at;
        END IF;
      WHEN 'delete' THEN
        DELETE FROM storage_items WHERE key = k;
        DELETE FROM storage_keys WHERE key = k;
      WHEN 'setField' THEN
        INSERT INTO storage_keys (key, value, expires_at) VALUES (k, NULL, NULL) ON CONFLICT (key) DO NOTHING;
        INSERT INTO storage_items (key, item, value) VALUES (k, w->>'field', w->>'value')
          ON CONFLICT (key, item) DO UPDATE SET value = EXCLUDED.value;
      WHEN 'addMember' THEN
        INSERT INTO storage_keys (key, value, expires_at) VALUES (k, NULL, NULL) ON CONFLICT (key) DO NOTHING;
        INSERT INTO storage_items (key, item, value) VALUES (k, w->>'member', '') ON CONFLICT (key, item) DO NOTHING;
      WHEN 'removeMember' THEN
        DELETE FROM storage_items WHERE key = k AND item = w->>'member';
        -- An empty set is no set, as in Redis.
        IF NOT EXISTS (SELECT 1 FROM storage_items WHERE key = k) THEN
          DELETE FROM storage_keys WHERE key = k;
        END IF;
      WHEN 'expireAt' THEN
        at_ms := (w->>'at')::bigint;
        SELECT s.expires_at INTO expiry FROM storage_keys s WHERE s.key = k;
        IF FOUND THEN
          IF at_ms <= now_ms THEN
            DELETE FROM storage_items WHERE key = k;
            DELETE FROM storage_keys WHERE key = k;
          ELSIF NOT coalesce((w->>'extendOnly')::boolean, false) OR expiry IS NULL OR expiry < at_ms THEN
            UPDATE storage_keys SET expires_at = at_ms WHERE key = k;
          END IF;
        END IF;
      ELSE
        RAISE EXCEPTION 'unknown storage write %', w->>'op';
    END CASE;
  END LOOP;
  RETURN true;
END
$body$;
`,
  },
  {
    version: 2,
    name: "the organization's Deel budget",
    sql: `
CREATE TABLE deel_budget (
  id text PRIMARY KEY,
  slots jsonb NOT NULL DEFAULT '[]'
);
INSERT INTO deel_budget (id) VALUES ('organization');
`,
  },
  {
    version: 3,
    name: "the Deel budget's departures",
    sql: `
ALTER TABLE deel_budget ADD COLUMN departures jsonb NOT NULL DEFAULT '[]';
`,
  },
  {
    version: 4,
    name: "ordered keys (the session history)",
    sql: `
CREATE TABLE storage_ordered (
  key text NOT NULL,
  position text COLLATE "C" NOT NULL,
  value text NOT NULL,
  PRIMARY KEY (key, position)
);

CREATE OR REPLACE FUNCTION storage_commit(conditions jsonb, writes jsonb, now_ms bigint) RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $body$
DECLARE
  c jsonb;
  w jsonb;
  k text;
  actual text;
  expiry bigint;
  at_ms bigint;
BEGIN
  FOR k IN
    SELECT named.key FROM (
      SELECT e->>'key' AS key FROM jsonb_array_elements(conditions) e
      UNION SELECT e->>'key' FROM jsonb_array_elements(writes) e
    ) named
    ORDER BY hashtextextended(current_schema() || ':' || named.key, 0)
  LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || k, 0));
  END LOOP;

  FOR c IN SELECT * FROM jsonb_array_elements(conditions) LOOP
    k := c->>'key';
    IF c->>'field' IS NULL THEN
      SELECT s.value INTO actual FROM storage_keys s
        WHERE s.key = k AND (s.expires_at IS NULL OR s.expires_at > now_ms);
    ELSE
      SELECT i.value INTO actual FROM storage_items i JOIN storage_keys s ON s.key = i.key
        WHERE i.key = k AND i.item = c->>'field' AND (s.expires_at IS NULL OR s.expires_at > now_ms);
    END IF;
    IF NOT FOUND THEN actual := NULL; END IF;
    IF actual IS DISTINCT FROM c->>'equals' THEN RETURN false; END IF;
  END LOOP;

  FOR w IN SELECT * FROM jsonb_array_elements(writes) LOOP
    k := w->>'key';
    -- An expired key is gone before anything is written to it, as in Redis.
    IF EXISTS (SELECT 1 FROM storage_keys WHERE key = k AND expires_at <= now_ms) THEN
      DELETE FROM storage_items WHERE key = k;
      DELETE FROM storage_ordered WHERE key = k;
      DELETE FROM storage_keys WHERE key = k;
    END IF;
    CASE w->>'op'
      WHEN 'put' THEN
        DELETE FROM storage_items WHERE key = k;
        DELETE FROM storage_ordered WHERE key = k;
        IF w->>'expireAt' IS NOT NULL AND (w->>'expireAt')::bigint <= now_ms THEN
          DELETE FROM storage_keys WHERE key = k;
        ELSE
          INSERT INTO storage_keys (key, value, expires_at) VALUES (k, w->>'value', (w->>'expireAt')::bigint)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at;
        END IF;
      WHEN 'delete' THEN
        DELETE FROM storage_items WHERE key = k;
        DELETE FROM storage_ordered WHERE key = k;
        DELETE FROM storage_keys WHERE key = k;
      WHEN 'setField' THEN
        INSERT INTO storage_keys (key, value, expires_at) VALUES (k, NULL, NULL) ON CONFLICT (key) DO NOTHING;
        INSERT INTO storage_items (key, item, value) VALUES (k, w->>'field', w->>'value')
          ON CONFLICT (key, item) DO UPDATE SET value = EXCLUDED.value;
      WHEN 'addMember' THEN
        INSERT INTO storage_keys (key, value, expires_at) VALUES (k, NULL, NULL) ON CONFLICT (key) DO NOTHING;
        INSERT INTO storage_items (key, item, value) VALUES (k, w->>'member', '') ON CONFLICT (key, item) DO NOTHING;
      WHEN 'removeMember' THEN
        DELETE FROM storage_items WHERE key = k AND item = w->>'member';
        -- An empty set is no set, as in Redis.
        IF NOT EXISTS (SELECT 1 FROM storage_items WHERE key = k) THEN
          DELETE FROM storage_keys WHERE key = k;
        END IF;
      WHEN 'expireAt' THEN
        at_ms := (w->>'at')::bigint;
        SELECT s.expires_at INTO expiry FROM storage_keys s WHERE s.key = k;
        IF FOUND THEN
          IF at_ms <= now_ms THEN
            DELETE FROM storage_items WHERE key = k;
            DELETE FROM storage_ordered WHERE key = k;
            DELETE FROM storage_keys WHERE key = k;
          ELSIF NOT coalesce((w->>'extendOnly')::boolean, false) OR expiry IS NULL OR expiry < at_ms THEN
            UPDATE storage_keys SET expires_at = at_ms WHERE key = k;
          END IF;
        END IF;
      WHEN 'addItem' THEN
        INSERT INTO storage_keys (key, value, expires_at) VALUES (k, NULL, NULL) ON CONFLICT (key) DO NOTHING;
        INSERT INTO storage_ordered (key, position, value) VALUES (k, w->>'position', w->>'value')
          ON CONFLICT (key, position) DO UPDATE SET value = EXCLUDED.value;
        IF w->>'pruneBelow' IS NOT NULL THEN
          DELETE FROM storage_ordered WHERE key = k AND position < (w->>'pruneBelow') COLLATE "C";
          IF NOT EXISTS (SELECT 1 FROM storage_ordered WHERE key = k) THEN
            DELETE FROM storage_keys WHERE key = k;
          END IF;
        END IF;
      WHEN 'removeItem' THEN
        DELETE FROM storage_ordered WHERE key = k AND position = (w->>'position') COLLATE "C";
        -- An empty ordered key is no key, as in Redis.
        IF NOT EXISTS (SELECT 1 FROM storage_ordered WHERE key = k) AND NOT EXISTS (SELECT 1 FROM storage_items WHERE key = k) THEN
          DELETE FROM storage_keys WHERE key = k;
        END IF;
      ELSE
        RAISE EXCEPTION 'unknown storage write %', w->>'op';
    END CASE;
  END LOOP;
  RETURN true;
END
$body$;
`,
  },
];

/** The database holds a schema this release does not know (a newer release migrated it). */
export class SchemaTooNewError extends Error {
  constructor(schema: string, found: number, known: number) {
    super(
      `The PostgreSQL schema "${schema}" is at version ${found}, but this release knows versions up to ${known}: a newer release migrated it. ` +
        `Run that release (or a later one); this one refuses to start rather than misread its tables.`,
    );
    this.name = "SchemaTooNewError";
  }
}

/** Longest a replica waits for another's migration, and a migration may run. */
const MIGRATION_TIMEOUT_MS = 60_000;

/**
 * Brings `schema` (created when missing) up to the last of `migrations`, once across replicas (see
 * the module comment). Resolves to the versions before and after; rejects with SchemaTooNewError
 * on a schema newer than `migrations`, and with the database's error otherwise.
 */
export async function migrate(pool: Pool, schema: string, migrations: readonly Migration[] = MIGRATIONS): Promise<{ from: number; to: number }> {
  const known = migrations.reduce((most, m) => Math.max(most, m.version), 0);
  const client = await pool.connect();
  try {
    await client.query(`SET statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
    await client.query("SELECT pg_advisory_lock(hashtext('worker-session-gateway:migrations'), hashtext($1))", [schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`SET search_path = ${schema}`);
    await client.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const { rows } = await client.query<{ version: number }>("SELECT coalesce(max(version), 0)::int AS version FROM schema_migrations");
    const from = rows[0]?.version ?? 0;
    if (from > known) throw new SchemaTooNewError(schema, from, known);
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (migration.version <= from) continue;
      await client.query("BEGIN");
      try {
        await client.query(migration.sql);
        await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      }
    }
    return { from, to: Math.max(from, known) };
  } finally {
    // The connection's settings were changed for the migration: it is closed, not reused, which
    // also releases the advisory lock.
    client.release(true);
  }
}
