import { closeRedisConnection, defineLuaCommands, redisKeys, type LuaCommand, type Redis, type RedisWithCommands } from "../redis/connection.js";
import { LedgerError } from "./errors.js";
import { currentFence } from "./fencing.js";
import { WORKER_TOKEN_LIFETIME_MS, type MintIntent } from "./intent.js";
import type { SessionRecord } from "./record.js";
import type { SessionStore } from "./store.js";

/** How the record is kept in Redis: one JSON string per profile, times as ISO-8601 (readable in redis-cli). */
interface StoredRecord {
  profileId: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  createdBy: string;
  revokedBy: string | null;
}

export interface RedisSessionStoreOptions {
  /** Key prefix (`REDIS_KEY_PREFIX`); records live at `<prefix>session:<profileId>`. */
  keyPrefix: string;
  /** How long a record stays after its session expires (`SESSION_RETENTION_DAYS`), in ms. */
  retentionMs: number;
  /** Close the connection in `close()` (true when the store opened it itself). Default false. */
  ownsConnection?: boolean;
}

/** The ledger's writes, defined as commands on the connection (see `defineLuaCommands`). */
const LEDGER_COMMANDS = {
  /**
   * Writes a new record, replacing any earlier one, with its key expiring at expiresAt + retention.
   * With a fencing token (ARGV[3] not empty), writes only while that token is still the profile's
   * latest, i.e. the writer still holds the profile's lock: 1 written, 0 refused.
   * A PXAT already in the past deletes the key at once (the record is past retention).
   * Keeps the createdBy index: the profile leaves the set of the record's previous creator (a replaced
   * record moves to another creator) and joins the new creator's, whose set lives as long as its
   * longest-lived record.
   *
   * KEYS: session, fence, creator set of the new record. ARGV: record JSON, expire-at (epoch ms),
   * fencing token or '', profile id, the creator-set key prefix (`<prefix>creator:`), new createdBy.
   */
  wsgLedgerPut: {
    numberOfKeys: 3,
    lua: `
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
local old = redis.call('GET', KEYS[1])
if old then
  local ok, previous = pcall(cjson.decode, old)
  if ok and type(previous.createdBy) == 'string' and previous.createdBy ~= ARGV[6] then
    redis.call('SREM', ARGV[5] .. previous.createdBy, ARGV[4])
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expireAt = tonumber(ARGV[2])
if expireAt > now then
  redis.call('SADD', KEYS[3], ARGV[4])
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl < 0 or now + ttl < expireAt then redis.call('PEXPIREAT', KEYS[3], expireAt) end
else
  redis.call('SREM', KEYS[3], ARGV[4])
end
return 1
`,
  },

  /**
   * Marks a record revoked unless it already is (the first revokedAt/revokedBy stay), keeping its TTL.
   * Returns {1, record} or {0} when there is no record; {-1} when the fencing token is stale.
   *
   * KEYS: session, fence. ARGV: revokedAt (ISO-8601), revokedBy, fencing token or ''.
   */
  wsgLedgerMarkRevoked: {
    numberOfKeys: 2,
    lua: `
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then return {-1} end
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
local record = cjson.decode(raw)
if record.revokedAt == nil or record.revokedAt == cjson.null then
  record.revokedAt = ARGV[1]
  record.revokedBy = ARGV[2]
  raw = cjson.encode(record)
  redis.call('SET', KEYS[1], raw, 'KEEPTTL')
end
return {1, raw}
`,
  },

  /**
   * Writes the profile's intent, expiring after a token lifetime, unless an older one may still be
   * live: one begun at or before ARGV[2] and less than ARGV[3] ms before it stays untouched (TTL
   * included). 1 written, 0 an older one kept. Times are epoch-ms numbers, compared as numbers.
   *
   * KEYS: intent. ARGV: intent JSON (startedAt a number), startedAt (epoch ms), token lifetime (ms).
   */
  wsgLedgerBeginMint: {
    numberOfKeys: 1,
    lua: `
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, older = pcall(cjson.decode, raw)
  local olderAt = ok and type(older) == 'table' and tonumber(older.startedAt) or nil
  local startedAt = tonumber(ARGV[2])
  if olderAt and olderAt <= startedAt and startedAt - olderAt < tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`,
  },

  /**
   * Deletes the profile's intent only if it began at or before ARGV[1] (epoch ms, compared as a
   * number): a later mint's intent stays. KEYS: intent. ARGV: upTo.
   */
  wsgLedgerEndMint: {
    numberOfKeys: 1,
    lua: `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, intent = pcall(cjson.decode, raw)
local startedAt = ok and type(intent) == 'table' and tonumber(intent.startedAt) or nil
if startedAt and startedAt > tonumber(ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1])
`,
  },
} satisfies Record<string, LuaCommand>;

function intentFrom(raw: string): MintIntent {
  const value = JSON.parse(raw) as { profileId?: unknown; createdBy?: unknown; startedAt?: unknown };
  if (typeof value.profileId !== "string" || typeof value.createdBy !== "string" || typeof value.startedAt !== "number") {
    throw new Error("a mint intent in Redis is unreadable");
  }
  return { profileId: value.profileId, createdBy: value.createdBy, startedAt: new Date(value.startedAt) };
}

function toStored(record: SessionRecord): StoredRecord {
  return {
    profileId: record.profileId,
    createdAt: record.createdAt.toISOString(),
    expiresAt: record.expiresAt.toISOString(),
    revokedAt: record.revokedAt === null ? null : record.revokedAt.toISOString(),
    createdBy: record.createdBy,
    revokedBy: record.revokedBy,
  };
}

function date(value: unknown, field: string): Date {
  const parsed = typeof value === "string" ? new Date(value) : new Date(Number.NaN);
  if (!Number.isFinite(parsed.getTime())) throw new Error(`a ledger record in Redis has an unreadable ${field}`);
  return parsed;
}

function fromStored(raw: string): SessionRecord {
  const value = JSON.parse(raw) as Partial<Record<keyof StoredRecord, unknown>>;
  if (typeof value.profileId !== "string" || typeof value.createdBy !== "string") {
    throw new Error("a ledger record in Redis is not a session record");
  }
  return {
    profileId: value.profileId,
    createdAt: date(value.createdAt, "createdAt"),
    expiresAt: date(value.expiresAt, "expiresAt"),
    revokedAt: value.revokedAt === null || value.revokedAt === undefined ? null : date(value.revokedAt, "revokedAt"),
    createdBy: value.createdBy,
    revokedBy: typeof value.revokedBy === "string" ? value.revokedBy : null,
  };
}

/**
 * The ledger in Redis (`SESSION_STORE_URL=redis://…`), shared by every replica.
 *
 * Key layout: `<prefix>session:<profileId>` holds one JSON string. Its TTL is the session's expiry
 * plus the retention period, so EXPIRED and REVOKED records stay readable for audit that long and
 * then disappear by themselves. `getMany` is one MGET. Writes made inside the Redis lock carry
 * its fencing token and are refused once the writer has lost the profile's lock (LedgerError
 * `fenced`). Every Redis failure is a LedgerError `unavailable`, raised fast (see redis/connection.ts).
 */
export class RedisSessionStore implements SessionStore {
  private readonly redis: RedisWithCommands<keyof typeof LEDGER_COMMANDS>;
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly retentionMs: number;
  private readonly ownsConnection: boolean;

  constructor(redis: Redis, options: RedisSessionStoreOptions) {
    if (!Number.isFinite(options.retentionMs) || options.retentionMs < 0) throw new TypeError("retentionMs must be ≥ 0");
    this.redis = defineLuaCommands(redis, LEDGER_COMMANDS);
    this.keys = redisKeys(options.keyPrefix);
    this.retentionMs = options.retentionMs;
    this.ownsConnection = options.ownsConnection ?? false;
  }

  async get(profileId: string): Promise<SessionRecord | null> {
    const raw = await this.call("GET", () => this.redis.get(this.keys.session(profileId)));
    return raw === null ? null : fromStored(raw);
  }

  async getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>> {
    if (profileIds.length === 0) return [];
    const raws = await this.call("MGET", () => this.redis.mget(profileIds.map((id) => this.keys.session(id))));
    return raws.map((raw) => (raw === null ? null : fromStored(raw)));
  }

  async put(record: SessionRecord): Promise<void> {
    const fence = currentFence(record.profileId);
    const expireAt = record.expiresAt.getTime() + this.retentionMs;
    const written = await this.call("SET", () =>
      this.redis.wsgLedgerPut(
        this.keys.session(record.profileId),
        this.keys.fence(record.profileId),
        this.keys.creator(record.createdBy),
        JSON.stringify(toStored(record)),
        expireAt,
        fence === undefined ? "" : String(fence),
        record.profileId,
        this.keys.creator(""),
        record.createdBy,
      ),
    );
    if (Number(written) !== 1) throw fenced(record.profileId);
  }

  async markRevoked(profileId: string, revokedAt: Date, revokedBy: string): Promise<SessionRecord | null> {
    const fence = currentFence(profileId);
    const reply = (await this.call("revoke", () =>
      this.redis.wsgLedgerMarkRevoked(
        this.keys.session(profileId),
        this.keys.fence(profileId),
        revokedAt.toISOString(),
        revokedBy,
        fence === undefined ? "" : String(fence),
      ),
    )) as [number, string?];
    const [status, raw] = reply;
    if (Number(status) === -1) throw fenced(profileId);
    return raw === undefined ? null : fromStored(raw);
  }

  /**
   * The createdBy index: SSCAN of the creator's set, records read by MGET in batches. A member whose
   * record has since expired (or moved to another creator) is skipped.
   */
  async listByCreator(createdBy: string): Promise<SessionRecord[]> {
    const found: SessionRecord[] = [];
    const seen = new Set<string>();
    let cursor = "0";
    do {
      const [next, scanned] = await this.call("SSCAN", () => this.redis.sscan(this.keys.creator(createdBy), cursor, "COUNT", 500));
      cursor = next;
      // SSCAN may return a member twice.
      const ids = scanned.filter((id) => !seen.has(id));
      for (const id of ids) seen.add(id);
      if (ids.length === 0) continue;
      const raws = await this.call("MGET", () => this.redis.mget(ids.map((id) => this.keys.session(id))));
      for (const raw of raws) {
        if (raw === null) continue;
        const record = fromStored(raw);
        if (record.createdBy === createdBy) found.push(record);
      }
    } while (cursor !== "0");
    return found;
  }

  /** Kept as long as a token behind a lost answer could live, then gone by itself. */
  async beginMint(intent: MintIntent): Promise<boolean> {
    const startedAt = intent.startedAt.getTime();
    const value = JSON.stringify({ profileId: intent.profileId, createdBy: intent.createdBy, startedAt });
    const written = await this.call("SET", () =>
      this.redis.wsgLedgerBeginMint(this.keys.intent(intent.profileId), value, String(startedAt), String(WORKER_TOKEN_LIFETIME_MS)),
    );
    return Number(written) === 1;
  }

  async endMint(profileId: string, upTo?: Date): Promise<void> {
    const key = this.keys.intent(profileId);
    if (upTo === undefined) await this.call("DEL", () => this.redis.del(key));
    else await this.call("DEL", () => this.redis.wsgLedgerEndMint(key, String(upTo.getTime())));
  }

  async getIntents(profileIds: readonly string[]): Promise<Array<MintIntent | null>> {
    if (profileIds.length === 0) return [];
    const raws = await this.call("MGET", () => this.redis.mget(profileIds.map((id) => this.keys.intent(id))));
    return raws.map((raw) => (raw === null ? null : intentFrom(raw)));
  }

  /** Rejects at once while disconnected, or after the command timeout when Redis does not answer. */
  async ping(): Promise<void> {
    await this.call("PING", () => this.redis.ping());
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await closeRedisConnection(this.redis);
  }

  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new LedgerError("unavailable", `The session ledger (Redis) failed on ${operation}: ${reason}`, { cause: error });
    }
  }
}

function fenced(profileId: string): LedgerError {
  return new LedgerError(
    "fenced",
    `Ledger write for profile ${profileId} refused: this replica's lock on the profile expired and a newer operation started`,
  );
}
