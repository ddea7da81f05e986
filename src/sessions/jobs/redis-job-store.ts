import { defineLuaCommands, type LuaCommand, type Redis, type RedisWithCommands } from "../../redis/connection.js";
import { LedgerError } from "../errors.js";
import type { JobStore } from "./job-store.js";
import { pendingTarget, type BlockingJob, type NewRevocationJob, type RevocationJob, type RevocationJobStatus, type RevocationTarget, type TargetState } from "./job.js";

export interface RedisJobStoreOptions {
  /** Key prefix (`REDIS_KEY_PREFIX`), shared with the ledger. */
  keyPrefix: string;
  /** How long a finished job stays readable (`SESSION_RETENTION_DAYS`, at least a day), in ms. */
  retentionMs: number;
}

/** Key names of the jobs under one prefix. */
function jobKeys(prefix: string) {
  return {
    /** One hash per job: filters, status, times, counts, and the lease (`owner`, `leaseUntil`). */
    job: (id: string) => `${prefix}rjob:${id}`,
    /** One hash per job: profile id → the target's progress (JSON). */
    targets: (id: string) => `${prefix}rjob-targets:${id}`,
    /** One set per job: the profiles whose creates it refuses while it runs. */
    blocked: (id: string) => `${prefix}rjob-blocked:${id}`,
    /** The ids of every RUNNING job. */
    running: `${prefix}rjobs:running`,
  };
}

const DAY_MS = 24 * 3600 * 1000;

/** The lease and the progress writes, each atomic (see `defineLuaCommands`). Times are Redis's own. */
const JOB_COMMANDS = {
  /**
   * Takes the lease of a RUNNING job when it is free, expired or already ours. KEYS: job. ARGV: owner,
   * leaseMs. Returns 1 (held by owner now) or 0.
   */
  wsgJobClaim: {
    numberOfKeys: 1,
    lua: `
local f = redis.call('HMGET', KEYS[1], 'status', 'owner', 'leaseUntil')
if f[1] ~= 'RUNNING' then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if f[2] == ARGV[1] or not f[2] or f[2] == '' or tonumber(f[3] or '0') < now then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'leaseUntil', now + tonumber(ARGV[2]))
  return 1
end
return 0
`,
  },

  /** Frees the lease if it is ours. KEYS: job. ARGV: owner. */
  wsgJobRelease: {
    numberOfKeys: 1,
    lua: `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'leaseUntil', '0')
return 1
`,
  },

  /**
   * Adds pending targets (existing ones untouched) and blocks their profiles, while `owner` holds the
   * job. KEYS: job, targets, blocked. ARGV: owner, planned ('1' or ''), the pending target JSON, ids….
   * Returns how many were new, or -1 when the lease is not ours.
   */
  wsgJobAddTargets: {
    numberOfKeys: 3,
    lua: `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'status') ~= 'RUNNING' then return -1 end
local added = 0
for i = 4, #ARGV do
  added = added + redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[i])
end
if added > 0 then redis.call('HINCRBY', KEYS[1], 'total', added) end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'planned', '1') end
return added
`,
  },

  /**
   * Writes one target and keeps the job's `revoked` / `failed` counts, while `owner` holds the job.
   * KEYS: job, targets. ARGV: owner, profile id, target JSON, its state. Returns 1, or 0 when not ours.
   */
  wsgJobUpdateTarget: {
    numberOfKeys: 2,
    lua: `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'status') ~= 'RUNNING' then return 0 end
local old = redis.call('HGET', KEYS[2], ARGV[2])
local was = 'pending'
if old then was = cjson.decode(old).state end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if was == 'revoked' or was == 'failed' then redis.call('HINCRBY', KEYS[1], was, -1) end
if ARGV[4] == 'revoked' or ARGV[4] == 'failed' then redis.call('HINCRBY', KEYS[1], ARGV[4], 1) end
return 1
`,
  },

  /**
   * Ends a job held by `owner`: status, finish time, reason; out of the running set (its block lifts),
   * and every key of the job expires after the retention. KEYS: job, running, targets, blocked.
   * ARGV: owner, status, finishedAt (ms), reason, retentionMs, id.
   */
  wsgJobFinish: {
    numberOfKeys: 4,
    lua: `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'status') ~= 'RUNNING' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'finishedAt', ARGV[3], 'failureReason', ARGV[4], 'owner', '', 'leaseUntil', '0')
redis.call('SREM', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PEXPIRE', KEYS[4], ARGV[5])
return 1
`,
  },
} satisfies Record<string, LuaCommand>;

function toJob(fields: Record<string, string>): RevocationJob | null {
  if (fields.id === undefined || fields.status === undefined) return null;
  return {
    id: fields.id,
    status: fields.status as RevocationJobStatus,
    filters: {
      createdBy: fields.createdBy === undefined || fields.createdBy === "" ? null : fields.createdBy,
      profileIds: fields.profileIds === undefined || fields.profileIds === "" ? null : (JSON.parse(fields.profileIds) as string[]),
      onlyActive: fields.onlyActive === "1",
    },
    requestedBy: fields.requestedBy ?? "",
    startedAt: new Date(Number(fields.startedAt)),
    finishedAt: fields.finishedAt === undefined || fields.finishedAt === "" ? null : new Date(Number(fields.finishedAt)),
    planned: fields.planned === "1",
    total: Number(fields.total ?? 0),
    revoked: Number(fields.revoked ?? 0),
    failed: Number(fields.failed ?? 0),
    failureReason: fields.failureReason === undefined || fields.failureReason === "" ? null : fields.failureReason,
  };
}

function targetJson(target: RevocationTarget): string {
  return JSON.stringify({ state: target.state, attempts: target.attempts, notBefore: target.notBefore, lastError: target.lastError });
}

/**
 * Jobs in Redis (`SESSION_STORE_URL=redis://…`), beside the ledger and shared by every replica: the
 * lease is taken and every progress write checked in one Lua script each, on Redis's clock, so two
 * replicas never hold a job at once and a replica that lost the lease cannot write. The block on
 * creates is read by every replica (`blockingJob`: one SMEMBERS while no job runs).
 */
export class RedisJobStore implements JobStore {
  private readonly redis: RedisWithCommands<keyof typeof JOB_COMMANDS>;
  private readonly keys: ReturnType<typeof jobKeys>;
  private readonly retentionMs: number;

  constructor(redis: Redis, options: RedisJobStoreOptions) {
    this.redis = defineLuaCommands(redis, JOB_COMMANDS);
    this.keys = jobKeys(options.keyPrefix);
    this.retentionMs = Math.max(DAY_MS, options.retentionMs);
  }

  async create(job: NewRevocationJob, owner: string, leaseMs: number): Promise<void> {
    const { filters } = job;
    const fields = {
      id: job.id,
      status: "RUNNING",
      createdBy: filters.createdBy ?? "",
      profileIds: filters.profileIds === null ? "" : JSON.stringify(filters.profileIds),
      onlyActive: filters.onlyActive ? "1" : "0",
      requestedBy: job.requestedBy,
      startedAt: String(job.startedAt.getTime()),
      finishedAt: "",
      planned: "0",
      total: "0",
      revoked: "0",
      failed: "0",
      failureReason: "",
      owner,
      leaseUntil: "0",
    };
    await this.call("create", async () => {
      const multi = this.redis.multi().hset(this.keys.job(job.id), fields);
      if (filters.profileIds !== null && filters.profileIds.length > 0) multi.sadd(this.keys.blocked(job.id), ...filters.profileIds);
      const results = await multi.exec();
      const failed = results?.find(([error]) => error !== null);
      if (results === null || failed !== undefined) throw failed?.[0] ?? new Error("the transaction was discarded");
    });
    // The lease's expiry is set on Redis's clock, like every later renewal; only then does the job
    // join the running set (where other replicas look for orphans, and creates for blocks).
    await this.claim(job.id, owner, leaseMs);
    await this.call("SADD", () => this.redis.sadd(this.keys.running, job.id));
  }

  async get(id: string): Promise<RevocationJob | null> {
    return toJob(await this.call("HGETALL", () => this.redis.hgetall(this.keys.job(id))));
  }

  async running(): Promise<string[]> {
    return this.call("SMEMBERS", () => this.redis.smembers(this.keys.running));
  }

  async claim(id: string, owner: string, leaseMs: number): Promise<boolean> {
    return Number(await this.call("claim", () => this.redis.wsgJobClaim(this.keys.job(id), owner, leaseMs))) === 1;
  }

  async release(id: string, owner: string): Promise<void> {
    await this.call("release", () => this.redis.wsgJobRelease(this.keys.job(id), owner));
  }

  async addTargets(id: string, owner: string, profileIds: readonly string[], planned: boolean): Promise<number | null> {
    const pending = targetJson(pendingTarget(""));
    let added = 0;
    // In slices, so that one script never holds Redis for long; `planned` goes with the last one.
    const SLICE = 500;
    for (let start = 0; start === 0 || start < profileIds.length; start += SLICE) {
      const slice = profileIds.slice(start, start + SLICE);
      const last = start + SLICE >= profileIds.length;
      const reply = await this.call("addTargets", () =>
        this.redis.wsgJobAddTargets(this.keys.job(id), this.keys.targets(id), this.keys.blocked(id), owner, planned && last ? "1" : "", pending, ...slice),
      );
      if (Number(reply) < 0) return null;
      added += Number(reply);
    }
    return added;
  }

  async targets(id: string): Promise<RevocationTarget[]> {
    const all = await this.call("HGETALL", () => this.redis.hgetall(this.keys.targets(id)));
    return Object.entries(all).map(([profileId, raw]) => {
      const value = JSON.parse(raw) as { state: TargetState; attempts: number; notBefore: number; lastError: string | null };
      return { profileId, state: value.state, attempts: value.attempts, notBefore: value.notBefore, lastError: value.lastError };
    });
  }

  async updateTarget(id: string, owner: string, target: RevocationTarget): Promise<boolean> {
    const reply = await this.call("updateTarget", () =>
      this.redis.wsgJobUpdateTarget(this.keys.job(id), this.keys.targets(id), owner, target.profileId, targetJson(target), target.state),
    );
    return Number(reply) === 1;
  }

  async finish(id: string, owner: string, status: "DONE" | "FAILED", finishedAt: Date, reason: string | null): Promise<boolean> {
    const reply = await this.call("finish", () =>
      this.redis.wsgJobFinish(
        this.keys.job(id),
        this.keys.running,
        this.keys.targets(id),
        this.keys.blocked(id),
        owner,
        status,
        finishedAt.getTime(),
        reason ?? "",
        this.retentionMs,
        id,
      ),
    );
    return Number(reply) === 1;
  }

  async blockingJob(profileId: string, sub: string): Promise<BlockingJob | null> {
    const running = await this.running();
    if (running.length === 0) return null;
    const replies = await this.call("blockingJob", async () => {
      const pipeline = this.redis.pipeline();
      for (const id of running) pipeline.hmget(this.keys.job(id), "status", "createdBy").sismember(this.keys.blocked(id), profileId);
      return (await pipeline.exec()) ?? [];
    });
    for (const [i, id] of running.entries()) {
      const [fieldsError, fields] = replies[2 * i] ?? [null, null];
      const [memberError, member] = replies[2 * i + 1] ?? [null, 0];
      if (fieldsError !== null || memberError !== null) throw new LedgerError("unavailable", "The revocation jobs (Redis) could not be read");
      const [status, createdBy] = fields as [string | null, string | null];
      if (status !== "RUNNING") continue;
      if (Number(member) === 1) return { id, reason: "profile" };
      if (createdBy !== null && createdBy !== "" && createdBy === sub) return { id, reason: "creator" };
    }
    return null;
  }

  /** The connection is the infrastructure's: it closes it. */
  async close(): Promise<void> {}

  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof LedgerError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new LedgerError("unavailable", `The revocation jobs (Redis) failed on ${operation}: ${reason}`, { cause: error });
    }
  }
}
