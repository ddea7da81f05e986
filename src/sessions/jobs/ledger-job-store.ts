import { systemClock, type Clock } from "../../base/clock.js";
import { keyNames } from "../../redis/keys.js";
import type { Condition, Storage, Write } from "../../storage/storage.js";
import { ContentionError, transact, type Decision } from "../../storage/transact.js";
import { LedgerError } from "../errors.js";
import type { JobStore } from "./job-store.js";
import {
  isSettled,
  pendingTarget,
  type BlockingJob,
  type NewRevocationJob,
  type RevocationJob,
  type RevocationJobStatus,
  type RevocationTarget,
  type TargetState,
} from "./job.js";

export interface LedgerJobStoreOptions {
  /**
   * How long a finished job stays readable (`SESSION_RETENTION_DAYS`, at least a day), in ms; null:
   * for ever (the SQLite ledger has always kept its jobs).
   */
  retentionMs: number | null;
  /** The leases' clock. Default: the system clock. */
  clock?: Clock;
  /** Close the storage in `close()`. Default false (the ledger's storage, closed by its owner). */
  ownsStorage?: boolean;
}

const DAY_MS = 24 * 3600 * 1000;
/** Targets added per conditional write, so that one write never holds the backing store for long. */
const TARGET_SLICE = 500;
/** The fields of a job's map that its lease and counts live in. */
const LEASE_FIELDS = ["status", "owner", "leaseUntil", "total", "revoked", "failed", "planned"] as const;

/** A job as the map `rjob:<id>` holds it (the layout earlier releases wrote in Redis). */
export function jobFields(job: RevocationJob, owner: string, leaseUntil: number): Record<string, string> {
  const { filters } = job;
  return {
    id: job.id,
    status: job.status,
    createdBy: filters.createdBy ?? "",
    profileIds: filters.profileIds === null ? "" : JSON.stringify(filters.profileIds),
    onlyActive: filters.onlyActive ? "1" : "0",
    requestedBy: job.requestedBy,
    startedAt: String(job.startedAt.getTime()),
    finishedAt: job.finishedAt === null ? "" : String(job.finishedAt.getTime()),
    planned: job.planned ? "1" : "0",
    total: String(job.total),
    revoked: String(job.revoked),
    failed: String(job.failed),
    failureReason: job.failureReason ?? "",
    owner,
    leaseUntil: String(leaseUntil),
  };
}

function toJob(fields: Map<string, string>): RevocationJob | null {
  const id = fields.get("id");
  const status = fields.get("status");
  if (id === undefined || status === undefined) return null;
  const text = (name: string): string | null => {
    const value = fields.get(name);
    return value === undefined || value === "" ? null : value;
  };
  const profileIds = text("profileIds");
  const finishedAt = text("finishedAt");
  return {
    id,
    status: status as RevocationJobStatus,
    filters: { createdBy: text("createdBy"), profileIds: profileIds === null ? null : (JSON.parse(profileIds) as string[]), onlyActive: fields.get("onlyActive") === "1" },
    requestedBy: fields.get("requestedBy") ?? "",
    startedAt: new Date(Number(fields.get("startedAt"))),
    finishedAt: finishedAt === null ? null : new Date(Number(finishedAt)),
    planned: fields.get("planned") === "1",
    total: Number(fields.get("total") ?? 0),
    revoked: Number(fields.get("revoked") ?? 0),
    failed: Number(fields.get("failed") ?? 0),
    failureReason: text("failureReason"),
  };
}

/** A target as the map `rjob-targets:<id>` holds it: profile id → this JSON. */
export function targetJson(target: RevocationTarget): string {
  return JSON.stringify({ state: target.state, attempts: target.attempts, notBefore: target.notBefore, lastError: target.lastError });
}

function stateOf(raw: string | undefined): TargetState {
  if (raw === undefined) return "pending";
  return (JSON.parse(raw) as { state: TargetState }).state;
}

/** The conditions that pin what a decision read of a job's lease fields. */
function pinned(key: string, fields: Map<string, string>, names: readonly string[]): Condition[] {
  return names.map((field) => ({ key, field, equals: fields.get(field) ?? null }));
}

/**
 * The revocation jobs' rules, once, over the ledger's storage (SQLite or Redis): a job is a map
 * (`rjob:<id>`: filters, status, counts, lease), its targets another (`rjob-targets:<id>`), the
 * profiles it blocks a set (`rjob-blocked:<id>`), and RUNNING jobs a set of ids (`rjobs:running`).
 *
 * Every write of a runner reads the job's lease, decides, and commits on the fields it read, so a
 * runner that lost its lease (another claimed the job since) cannot write, and two writers never
 * both count the same target. Leases run on the injected clock; every replica's must agree to
 * within a small part of a lease.
 */
export class LedgerJobStore implements JobStore {
  private readonly storage: Storage;
  private readonly retentionMs: number | null;
  private readonly clock: Clock;
  private readonly ownsStorage: boolean;

  constructor(storage: Storage, options: LedgerJobStoreOptions) {
    this.storage = storage;
    this.retentionMs = options.retentionMs === null ? null : Math.max(DAY_MS, options.retentionMs);
    this.clock = options.clock ?? systemClock;
    this.ownsStorage = options.ownsStorage ?? false;
  }

  async create(job: NewRevocationJob, owner: string, leaseMs: number): Promise<void> {
    const key = keyNames.job(job.id);
    const running: RevocationJob = { ...job, status: "RUNNING", finishedAt: null, planned: false, total: 0, revoked: 0, failed: 0, failureReason: null };
    const writes: Write[] = Object.entries(jobFields(running, owner, this.clock.now() + leaseMs)).map(([field, value]) => ({ op: "setField", key, field, value }));
    for (const profileId of job.filters.profileIds ?? []) writes.push({ op: "addMember", key: keyNames.jobBlocked(job.id), member: profileId });
    writes.push({ op: "addMember", key: keyNames.runningJobs, member: job.id });
    if (!(await this.storage.commit([{ key, field: "id", equals: null }], writes))) {
      throw new TypeError(`a revocation job with id ${job.id} already exists`);
    }
  }

  async get(id: string): Promise<RevocationJob | null> {
    return toJob(await this.storage.fields(keyNames.job(id)));
  }

  async running(): Promise<string[]> {
    return this.storage.members(keyNames.runningJobs);
  }

  /** Free (no owner), expired, or already `owner`'s: taken, or renewed. */
  async claim(id: string, owner: string, leaseMs: number): Promise<boolean> {
    return this.decide(id, (key, job) => {
      if (job.get("status") !== "RUNNING") return { result: false };
      const now = this.clock.now();
      const holder = job.get("owner") ?? "";
      if (holder !== owner && holder !== "" && Number(job.get("leaseUntil") ?? 0) >= now) return { result: false };
      return {
        result: true,
        conditions: pinned(key, job, ["status", "owner", "leaseUntil"]),
        writes: [
          { op: "setField", key, field: "owner", value: owner },
          { op: "setField", key, field: "leaseUntil", value: String(now + leaseMs) },
        ],
      };
    });
  }

  async release(id: string, owner: string): Promise<void> {
    await this.decide(id, (key, job) => {
      if (job.get("owner") !== owner) return { result: undefined };
      return {
        result: undefined,
        conditions: pinned(key, job, ["owner"]),
        writes: [
          { op: "setField", key, field: "owner", value: "" },
          { op: "setField", key, field: "leaseUntil", value: "0" },
        ],
      };
    });
  }

  async addTargets(id: string, owner: string, profileIds: readonly string[], planned: boolean): Promise<number | null> {
    const targetsKey = keyNames.jobTargets(id);
    let added = 0;
    for (let start = 0; start === 0 || start < profileIds.length; start += TARGET_SLICE) {
      const slice = [...new Set(profileIds.slice(start, start + TARGET_SLICE))];
      // `planned` goes with the last slice.
      const last = start + TARGET_SLICE >= profileIds.length;
      const sliceAdded = await this.decide(id, async (key, job) => {
        if (!this.holds(job, owner)) return { result: null };
        // A target another write added meanwhile fails its condition: the slice is read again.
        const existing = await this.storage.fields(targetsKey, slice);
        const fresh = slice.filter((profileId) => !existing.has(profileId));
        const writes: Write[] = [];
        for (const profileId of slice) writes.push({ op: "addMember", key: keyNames.jobBlocked(id), member: profileId });
        for (const profileId of fresh) writes.push({ op: "setField", key: targetsKey, field: profileId, value: targetJson(pendingTarget(profileId)) });
        writes.push({ op: "setField", key, field: "total", value: String(Number(job.get("total") ?? 0) + fresh.length) });
        if (planned && last) writes.push({ op: "setField", key, field: "planned", value: "1" });
        return {
          result: fresh.length,
          conditions: [...pinned(key, job, ["status", "owner", "total"]), ...fresh.map((field) => ({ key: targetsKey, field, equals: null }))],
          writes,
        };
      });
      if (sliceAdded === null) return null;
      added += sliceAdded;
    }
    return added;
  }

  async targets(id: string): Promise<RevocationTarget[]> {
    const all = await this.storage.fields(keyNames.jobTargets(id));
    return [...all].map(([profileId, raw]) => {
      const value = JSON.parse(raw) as { state: TargetState; attempts: number; notBefore: number; lastError: string | null };
      return { profileId, state: value.state, attempts: value.attempts, notBefore: value.notBefore, lastError: value.lastError };
    });
  }

  /** Writes the target and keeps the job's revoked / failed counts: a target is counted once, in its latest state. */
  async updateTarget(id: string, owner: string, target: RevocationTarget): Promise<boolean> {
    const targetsKey = keyNames.jobTargets(id);
    return this.decide(id, async (key, job) => {
      if (!this.holds(job, owner)) return { result: false };
      const before = (await this.storage.fields(targetsKey, [target.profileId])).get(target.profileId);
      const counts = { revoked: Number(job.get("revoked") ?? 0), failed: Number(job.get("failed") ?? 0) };
      const was = stateOf(before);
      if (isSettled(was)) counts[was === "revoked" ? "revoked" : "failed"] -= 1;
      if (isSettled(target.state)) counts[target.state === "revoked" ? "revoked" : "failed"] += 1;
      return {
        result: true,
        conditions: [...pinned(key, job, ["status", "owner", "revoked", "failed"]), { key: targetsKey, field: target.profileId, equals: before ?? null }],
        writes: [
          { op: "setField", key: targetsKey, field: target.profileId, value: targetJson(target) },
          { op: "setField", key, field: "revoked", value: String(counts.revoked) },
          { op: "setField", key, field: "failed", value: String(counts.failed) },
        ],
      };
    });
  }

  /** Ends the job: out of the running set (its block lifts), and every key of it expires after the retention. */
  async finish(id: string, owner: string, status: "DONE" | "FAILED", finishedAt: Date, reason: string | null): Promise<boolean> {
    return this.decide(id, (key, job) => {
      if (!this.holds(job, owner)) return { result: false };
      const writes: Write[] = [
        { op: "setField", key, field: "status", value: status },
        { op: "setField", key, field: "finishedAt", value: String(finishedAt.getTime()) },
        { op: "setField", key, field: "failureReason", value: reason ?? "" },
        { op: "setField", key, field: "owner", value: "" },
        { op: "setField", key, field: "leaseUntil", value: "0" },
        { op: "removeMember", key: keyNames.runningJobs, member: id },
      ];
      if (this.retentionMs !== null) {
        const at = this.clock.now() + this.retentionMs;
        for (const expiring of [key, keyNames.jobTargets(id), keyNames.jobBlocked(id)]) writes.push({ op: "expireAt", key: expiring, at });
      }
      return { result: true, conditions: pinned(key, job, ["status", "owner"]), writes };
    });
  }

  /** One read of the running set while no job runs (the common case: every create asks). */
  async blockingJob(profileId: string, sub: string): Promise<BlockingJob | null> {
    const running = await this.running();
    if (running.length === 0) return null;
    const found = await Promise.all(
      running.map(async (id) => {
        const [fields, member] = await Promise.all([this.storage.fields(keyNames.job(id), ["status", "createdBy"]), this.storage.isMember(keyNames.jobBlocked(id), profileId)]);
        if (fields.get("status") !== "RUNNING") return null;
        if (member) return { id, reason: "profile" as const };
        const createdBy = fields.get("createdBy");
        if (createdBy !== undefined && createdBy !== "" && createdBy === sub) return { id, reason: "creator" as const };
        return null;
      }),
    );
    return found.find((blocking) => blocking !== null) ?? null;
  }

  async close(): Promise<void> {
    if (this.ownsStorage) await this.storage.close();
  }

  /** The job is RUNNING and `owner` holds its lease (an expired lease nobody has claimed since still counts). */
  private holds(job: Map<string, string>, owner: string): boolean {
    return job.get("status") === "RUNNING" && job.get("owner") === owner;
  }

  /** Reads the job's lease and counts, lets `rule` decide, commits on what it read; retried when raced. */
  private async decide<T>(id: string, rule: (key: string, job: Map<string, string>) => Decision<T> | Promise<Decision<T>>): Promise<T> {
    const key = keyNames.job(id);
    try {
      return await transact(this.storage, async () => rule(key, await this.storage.fields(key, LEASE_FIELDS)));
    } catch (error) {
      if (error instanceof ContentionError) {
        throw new LedgerError("busy", `Revocation job ${id} kept losing its writes to other writers (${error.attempts} attempts)`, { cause: error });
      }
      throw error;
    }
  }
}
