import type { JobStore } from "./job-store.js";
import { isSettled, pendingTarget, type BlockingJob, type NewRevocationJob, type RevocationJob, type RevocationTarget } from "./job.js";

interface Entry {
  job: RevocationJob;
  owner: string;
  leaseUntil: number;
  targets: Map<string, RevocationTarget>;
  /** Profiles whose creates the job refuses while it runs: its targets and the profiles it was given. */
  blocked: Set<string>;
}

function copyJob(job: RevocationJob): RevocationJob {
  return {
    ...job,
    filters: { ...job.filters, profileIds: job.filters.profileIds === null ? null : [...job.filters.profileIds] },
    startedAt: new Date(job.startedAt),
    finishedAt: job.finishedAt === null ? null : new Date(job.finishedAt),
  };
}

/**
 * Jobs in process memory (`SESSION_STORE_URL=memory:`): they survive a runner's stop but not the
 * process, like the memory ledger itself.
 */
export class MemoryJobStore implements JobStore {
  private readonly jobs = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  async create(job: NewRevocationJob, owner: string, leaseMs: number): Promise<void> {
    this.jobs.set(job.id, {
      job: copyJob({ ...job, status: "RUNNING", finishedAt: null, planned: false, total: 0, revoked: 0, failed: 0, failureReason: null }),
      owner,
      leaseUntil: this.now() + leaseMs,
      targets: new Map(),
      blocked: new Set(job.filters.profileIds ?? []),
    });
  }

  async get(id: string): Promise<RevocationJob | null> {
    const entry = this.jobs.get(id);
    return entry === undefined ? null : copyJob(entry.job);
  }

  async running(): Promise<string[]> {
    return [...this.jobs.values()].filter((entry) => entry.job.status === "RUNNING").map((entry) => entry.job.id);
  }

  async claim(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const entry = this.jobs.get(id);
    if (entry === undefined || entry.job.status !== "RUNNING") return false;
    const now = this.now();
    if (entry.owner !== owner && entry.owner !== "" && entry.leaseUntil >= now) return false;
    entry.owner = owner;
    entry.leaseUntil = now + leaseMs;
    return true;
  }

  async release(id: string, owner: string): Promise<void> {
    const entry = this.jobs.get(id);
    if (entry !== undefined && entry.owner === owner) {
      entry.owner = "";
      entry.leaseUntil = 0;
    }
  }

  async addTargets(id: string, owner: string, profileIds: readonly string[], planned: boolean): Promise<number | null> {
    const entry = this.held(id, owner);
    if (entry === undefined) return null;
    let added = 0;
    for (const profileId of profileIds) {
      entry.blocked.add(profileId);
      if (entry.targets.has(profileId)) continue;
      entry.targets.set(profileId, pendingTarget(profileId));
      added += 1;
    }
    entry.job.total += added;
    if (planned) entry.job.planned = true;
    return added;
  }

  async targets(id: string): Promise<RevocationTarget[]> {
    return [...(this.jobs.get(id)?.targets.values() ?? [])].map((target) => ({ ...target }));
  }

  async updateTarget(id: string, owner: string, target: RevocationTarget): Promise<boolean> {
    const entry = this.held(id, owner);
    if (entry === undefined) return false;
    const before = entry.targets.get(target.profileId);
    if (before !== undefined && isSettled(before.state)) entry.job[before.state === "revoked" ? "revoked" : "failed"] -= 1;
    if (isSettled(target.state)) entry.job[target.state === "revoked" ? "revoked" : "failed"] += 1;
    entry.targets.set(target.profileId, { ...target });
    return true;
  }

  async finish(id: string, owner: string, status: "DONE" | "FAILED", finishedAt: Date, reason: string | null): Promise<boolean> {
    const entry = this.held(id, owner);
    if (entry === undefined) return false;
    entry.job.status = status;
    entry.job.finishedAt = new Date(finishedAt);
    entry.job.failureReason = reason;
    entry.owner = "";
    entry.leaseUntil = 0;
    return true;
  }

  async blockingJob(profileId: string, sub: string): Promise<BlockingJob | null> {
    for (const entry of this.jobs.values()) {
      if (entry.job.status !== "RUNNING") continue;
      if (entry.blocked.has(profileId)) return { id: entry.job.id, reason: "profile" };
      if (entry.job.filters.createdBy === sub) return { id: entry.job.id, reason: "creator" };
    }
    return null;
  }

  async close(): Promise<void> {}

  /** The entry while `owner` holds its lease (an expired lease nobody has claimed since still counts). */
  private held(id: string, owner: string): Entry | undefined {
    const entry = this.jobs.get(id);
    return entry !== undefined && entry.owner === owner && entry.job.status === "RUNNING" ? entry : undefined;
  }
}
