import { closeRedisConnection, defineLuaCommands, type LuaCommand, type Redis, type RedisWithCommands } from "../redis/connection.js";
import { defaultFailure, type Condition, type FailureMapper, type OrderedItem, type PageRequest, type Storage, type Write } from "./storage.js";

export interface RedisStorageOptions {
  /** Put in front of every key (`REDIS_KEY_PREFIX`); one prefix = one organization. */
  keyPrefix: string;
  /** The error a failed command becomes. Default: StorageUnavailableError. */
  fail?: FailureMapper;
  /** Close the connection in `close()` (true when the storage opened it itself). Default false. */
  ownsConnection?: boolean;
}

/**
 * The one conditional write: every condition checked, then every write applied, in one script, so
 * nothing runs between the check and the writes. Generic: it knows the primitives of storage.ts and
 * no rule of any of its users.
 *
 * KEYS: every key the plan names. ARGV[1]: the plan as JSON, `[conditions, writes]`, each condition
 * `[keyIndex, field|null, equals|null]`, each write `[op, keyIndex, …args]` (numbers as strings).
 * Returns 1 (written) or 0 (a condition failed, nothing written).
 */
const STORAGE_COMMANDS = {
  wsgStorageCommit: {
    numberOfKeys: null,
    lua: `
local plan = cjson.decode(ARGV[1])
for _, c in ipairs(plan[1]) do
  local key = KEYS[c[1]]
  local actual
  if c[2] == cjson.null then actual = redis.call('GET', key) else actual = redis.call('HGET', key, c[2]) end
  if c[3] == cjson.null then
    if actual then return 0 end
  elseif actual ~= c[3] then return 0 end
end
local now
for _, w in ipairs(plan[2]) do
  local op, key = w[1], KEYS[w[2]]
  if op == 'put' then
    if w[4] == cjson.null then redis.call('SET', key, w[3]) else redis.call('SET', key, w[3], 'PXAT', w[4]) end
  elseif op == 'delete' then redis.call('DEL', key)
  elseif op == 'setField' then redis.call('HSET', key, w[3], w[4])
  elseif op == 'addMember' then redis.call('SADD', key, w[3])
  elseif op == 'removeMember' then redis.call('SREM', key, w[3])
  elseif op == 'expireAt' then
    local at = tonumber(w[3])
    if w[4] then
      local ttl = redis.call('PTTL', key)
      if ttl == -1 then
        redis.call('PEXPIREAT', key, w[3])
      elseif ttl >= 0 then
        if not now then
          local t = redis.call('TIME')
          now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        if now + ttl < at then redis.call('PEXPIREAT', key, w[3]) end
      end
    else
      redis.call('PEXPIREAT', key, w[3])
    end
  elseif op == 'addItem' then
    redis.call('ZREMRANGEBYLEX', key, '[' .. w[3] .. '\\0', '(' .. w[3] .. '\\1')
    redis.call('ZADD', key, 0, w[3] .. '\\0' .. w[4])
    if w[5] ~= cjson.null then redis.call('ZREMRANGEBYLEX', key, '-', '(' .. w[5]) end
  elseif op == 'removeItem' then
    redis.call('ZREMRANGEBYLEX', key, '[' .. w[3] .. '\\0', '(' .. w[3] .. '\\1')
  else
    return redis.error_reply('unknown storage write ' .. tostring(op))
  end
end
return 1
`,
  },
} satisfies Record<string, LuaCommand>;

type PlannedWrite = [string, number, ...Array<string | boolean | null>];

/**
 * The storage in Redis (`SESSION_STORE_URL=redis://…`), shared by every replica. Strings are Redis
 * strings, maps are hashes, sets are sets, expiry is the key's own (PXAT): the layout earlier
 * releases wrote. An ordered key is a sorted set whose members all score 0, each `position\0value`,
 * so that Redis's byte order of members is the order of positions (ZRANGEBYLEX pages it). Reads are one command each (`get` is one MGET, whatever the number of keys);
 * `commit` is one generic script (above). Every failure is the `fail` option's error, raised fast:
 * the connection neither queues nor replays commands (see redis/connection.ts).
 */
export class RedisStorage implements Storage {
  private readonly redis: RedisWithCommands<keyof typeof STORAGE_COMMANDS>;
  private readonly prefix: string;
  private readonly fail: FailureMapper;
  private readonly ownsConnection: boolean;

  constructor(redis: Redis, options: RedisStorageOptions) {
    this.redis = defineLuaCommands(redis, STORAGE_COMMANDS);
    this.prefix = options.keyPrefix;
    this.fail = options.fail ?? defaultFailure;
    this.ownsConnection = options.ownsConnection ?? false;
  }

  async get(keys: readonly string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return [];
    return this.call("MGET", () => this.redis.mget(keys.map((key) => this.prefix + key)));
  }

  async fields(key: string, names?: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    if (names === undefined) {
      const all = await this.call("HGETALL", () => this.redis.hgetall(this.prefix + key));
      for (const [name, value] of Object.entries(all)) found.set(name, value);
      return found;
    }
    if (names.length === 0) return found;
    const values = await this.call("HMGET", () => this.redis.hmget(this.prefix + key, ...names));
    for (const [i, name] of names.entries()) {
      const value = values[i];
      if (value !== null && value !== undefined) found.set(name, value);
    }
    return found;
  }

  /** SSCAN in batches (a large set never holds Redis for long); a member scanned twice counts once. */
  async members(key: string): Promise<string[]> {
    const seen = new Set<string>();
    let cursor = "0";
    do {
      const [next, batch] = await this.call("SSCAN", () => this.redis.sscan(this.prefix + key, cursor, "COUNT", 500));
      cursor = next;
      for (const member of batch) seen.add(member);
    } while (cursor !== "0");
    return [...seen];
  }

  /** One pipeline (one round trip): a ZREVRANGEBYLEX per request. */
  async pages(requests: readonly PageRequest[]): Promise<OrderedItem[][]> {
    if (requests.length === 0) return [];
    const replies = await this.call("pages", async () => {
      const pipeline = this.redis.pipeline();
      for (const request of requests) {
        // Members are `position\0value`: below a position is below its "\0"; above one is from its "\1" up.
        const max = request.below === undefined ? "+" : `(${request.below}`;
        const min = request.above === undefined ? "-" : `[${request.above}\u0001`;
        pipeline.zrevrangebylex(this.prefix + request.key, max, min, "LIMIT", 0, Math.max(0, Math.floor(request.limit)));
      }
      const results = (await pipeline.exec()) ?? [];
      return results.map(([error, members]) => {
        if (error) throw error;
        return members as string[];
      });
    });
    return replies.map((members) =>
      members.map((member) => {
        const cut = member.indexOf("\u0000");
        return { position: member.slice(0, cut), value: member.slice(cut + 1) };
      }),
    );
  }

  async isMember(key: string, member: string): Promise<boolean> {
    return (await this.call("SISMEMBER", () => this.redis.sismember(this.prefix + key, member))) === 1;
  }

  async commit(conditions: readonly Condition[], writes: readonly Write[]): Promise<boolean> {
    const keys: string[] = [];
    const index = new Map<string, number>();
    const at = (key: string): number => {
      let i = index.get(key);
      if (i === undefined) {
        keys.push(this.prefix + key);
        i = keys.length;
        index.set(key, i);
      }
      return i;
    };
    const checks = conditions.map((c) => [at(c.key), c.field ?? null, c.equals]);
    const planned = writes.map((write): PlannedWrite => {
      switch (write.op) {
        case "put":
          return ["put", at(write.key), write.value, write.expireAt === undefined ? null : String(write.expireAt)];
        case "delete":
          return ["delete", at(write.key)];
        case "setField":
          return ["setField", at(write.key), write.field, write.value];
        case "addMember":
          return ["addMember", at(write.key), write.member];
        case "removeMember":
          return ["removeMember", at(write.key), write.member];
        case "expireAt":
          return ["expireAt", at(write.key), String(write.at), write.extendOnly === true];
        case "addItem":
          return ["addItem", at(write.key), write.position, write.value, write.pruneBelow ?? null];
        case "removeItem":
          return ["removeItem", at(write.key), write.position];
        default:
          return write satisfies never;
      }
    });
    const plan = JSON.stringify([checks, planned]);
    const reply = await this.call("commit", () => this.redis.wsgStorageCommit(keys.length, ...keys, plan));
    return Number(reply) === 1;
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
      throw this.fail(operation, error);
    }
  }
}
