/**
 * The revocation runner (the kill switch's engine): starts jobs, holds their leases, takes over
 * jobs whose holder stopped, and works each job's targets to the end. Target selection lives in
 * targets.ts, takeover of interrupted targets in resume-targets.ts, one revoke try in
 * revoke-target.ts, the per-job hold in hold.ts.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Actor, WorkerSessionService } from "../service.js";
import type { SessionStore } from "../store.js";
import { type Hold, loseHold, nap, newHold, wakeAll } from "./hold.js";
import type { JobStore } from "./job-store.js";
import { isSettled, type RevocationFilters, type RevocationJob, type RevocationTarget } from "./job.js";
import { resumeTargets } from "./resume-targets.js";
import { RETRY_CAP_MS, revokeTarget } from "./revoke-target.js";
import { matchingTargets } from "./targets.js";

export interface RevocationSettings {
  /** How long a runner's hold on a job lasts unless renewed (renewed every quarter of it). */
  leaseMs: number;
  /** How often every runner looks for RUNNING jobs nobody holds (and once at start). */
  pollMs: number;
  /**
   * Revokes one job keeps in flight: `DEEL_RATE_LIMIT_RPS`, so that the shared budget always has
   * work from the job while an interactive call waits behind at most one window of it.
   */
  concurrency: number;
  /** Revoke attempts per target (after RATE_LIMITED / UPSTREAM_UNAVAILABLE) before it counts as failed. */
  maxAttempts: number;
}

export interface RunnerDeps {
  jobs: JobStore;
  /** The ledger: target lists come from its createdBy index; a takeover checks its records. */
  store: SessionStore;
  /** Every revoke goes through the service: ordering, budget, retries, breaker, ledger, audit. */
  sessions: WorkerSessionService;
  logger: Logger;
  settings: RevocationSettings;
  now?: () => number;
}

/**
 * Runs revocation jobs (the kill switch). One per process; every replica runs one.
 *
 * - `start`: records the job (RUNNING, leased to this runner), lists its targets from the ledger,
 *   answers, and revokes in the background.
 * - Each target is marked `in_progress` before its revoke, which goes through
 *   `WorkerSessionService.revoke` with the job's `requestedBy` as the actor: per-profile ordering, the
 *   shared Deel budget, retries, breaker, ledger update and audit line, exactly as an interactive
 *   revoke. `settings.concurrency` revokes are in flight at once.
 * - RATE_LIMITED and UPSTREAM_UNAVAILABLE put the target back with a wait, up to `maxAttempts`
 *   tries; any other failure (NOT_FOUND, …) counts it as failed. UPSTREAM_CREDENTIALS (Deel refuses
 *   the organization's token) ends the job FAILED: nothing more can succeed.
 * - Takeover: the lease is renewed while the job runs; every runner polls for RUNNING jobs whose
 *   lease has expired and claims them. A new holder counts an `in_progress` target whose ledger
 *   record was revoked at or after the job's start as revoked, without calling Deel again; any other
 *   is revoked again (Deel's revoke is idempotent), after the others (INTERRUPTED_RETRY_DELAY_MS).
 * - Once every target is settled, the filters are listed again: a session recorded by a create that
 *   passed its check just before the job began is added, so nothing is forgotten. Then DONE.
 * - `stop`: no new revokes; those in flight finish; leases are released so another replica takes
 *   over at once.
 */
export class RevocationRunner {
  /** This runner's lease owner id. */
  readonly owner = randomUUID();
  private readonly held = new Map<string, Promise<void>>();
  private readonly holds = new Set<Hold>();
  private readonly jobs: JobStore;
  private readonly store: SessionStore;
  private readonly sessions: WorkerSessionService;
  private readonly log: Logger;
  private readonly settings: RevocationSettings;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopping = false;

  constructor(deps: RunnerDeps) {
    this.jobs = deps.jobs;
    this.store = deps.store;
    this.sessions = deps.sessions;
    this.log = deps.logger.child({ component: "revocation-jobs" });
    this.settings = deps.settings;
    this.now = deps.now ?? Date.now;
  }

  /** Looks for orphaned jobs now, then every `pollMs`. */
  start(): void {
    if (this.timer !== undefined || this.stopping) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.settings.pollMs);
    this.timer.unref();
  }

  /**
   * Starts a job: recorded (from then on it blocks creates), its targets listed from the ledger,
   * then run in the background. Resolves to the job as it stands once listed.
   */
  async startJob(filters: RevocationFilters, requestedBy: string): Promise<RevocationJob> {
    if (this.stopping) throw new Error("the revocation runner is stopping");
    const id = randomUUID();
    await this.jobs.create({ id, filters, requestedBy, startedAt: new Date(this.now()) }, this.owner, this.settings.leaseMs);
    const created = await this.jobs.get(id);
    if (created === null) throw new Error(`revocation job ${id} vanished right after it was recorded`);
    try {
      await this.plan(created);
    } catch (error) {
      // The job is recorded and blocks creates: the background run lists its targets again.
      this.log.warn({ err: error, jobId: id }, "could not list a revocation job's targets yet; retrying in the background");
    }
    this.log.info({ jobId: id, requestedBy, createdBy: filters.createdBy, profileIds: filters.profileIds?.length ?? null, onlyActive: filters.onlyActive }, "revocation job started");
    this.hold(id);
    return (await this.jobs.get(id)) ?? created;
  }

  /** The job as it stands, or null. */
  get(id: string): Promise<RevocationJob | null> {
    return this.jobs.get(id);
  }

  /** Resolves once every job held here has stopped (in-flight revokes finished) and its lease is released. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const hold of this.holds) this.wakeAll(hold);
    while (this.held.size > 0) await Promise.allSettled([...this.held.values()]);
  }

  /** Claims every RUNNING job nobody holds (an expired lease) and runs it here. */
  private async poll(): Promise<void> {
    if (this.polling || this.stopping) return;
    this.polling = true;
    try {
      for (const id of await this.jobs.running()) {
        if (this.stopping) break;
        if (this.held.has(id)) continue;
        if (await this.jobs.claim(id, this.owner, this.settings.leaseMs)) {
          this.log.info({ jobId: id }, "took over a revocation job");
          this.hold(id);
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, "could not look for revocation jobs to resume");
    } finally {
      this.polling = false;
    }
  }

  private hold(id: string): void {
    if (this.held.has(id)) return;
    const running = this.run(id)
      .catch((error: unknown) => this.log.warn({ err: error, jobId: id }, "revocation job paused; it resumes on the next poll"))
      .finally(() => this.held.delete(id));
    this.held.set(id, running);
  }

  /** Lists the job's targets and writes them (marking the job planned). False when the lease is gone. */
  private async plan(job: RevocationJob): Promise<boolean> {
    const ids = await this.matching(job.filters);
    return (await this.jobs.addTargets(job.id, this.owner, ids, true)) !== null;
  }

  /** The profiles whose sessions match the filters now. */
  private matching(filters: RevocationFilters): Promise<string[]> {
    return matchingTargets(this.store, this.sessions, filters);
  }

  private async run(id: string): Promise<void> {
    const hold: Hold = newHold();
    this.holds.add(hold);
    const renewal = setInterval(() => {
      this.jobs.claim(id, this.owner, this.settings.leaseMs).then(
        (ours) => {
          if (!ours) this.lose(hold);
        },
        // Not fatal: if the lease really lapses, the store refuses this runner's writes.
        () => undefined,
      );
    }, Math.max(50, Math.floor(this.settings.leaseMs / 4)));
    renewal.unref();
    try {
      const job = await this.jobs.get(id);
      if (job === null || job.status !== "RUNNING") return;
      if (!job.planned && !(await this.plan(job))) return;
      for (;;) {
        const targets = await this.jobs.targets(id);
        const open = await this.resume(job, targets.filter((target) => !isSettled(target.state)), hold);
        await this.work(job, open, hold);
        if (hold.lost || this.stopping) return;
        if (hold.credentialsRefused) {
          const reason = "Deel refused the gateway's organization credentials; the operator must fix them, then start a new job";
          await this.jobs.finish(id, this.owner, "FAILED", new Date(this.now()), reason);
          this.log.error({ jobId: id }, `revocation job FAILED: ${reason}`);
          return;
        }
        // Everything settled. Anything matching now that is not a target yet was recorded by a create
        // that passed its check just before the job began: add it, and go on.
        const known = new Set(targets.map((target) => target.profileId));
        const missed = (await this.matching({ ...job.filters, onlyActive: true })).filter((profileId) => !known.has(profileId));
        if (missed.length === 0) {
          if (await this.jobs.finish(id, this.owner, "DONE", new Date(this.now()), null)) {
            const done = await this.jobs.get(id);
            this.log.info({ jobId: id, total: done?.total, revoked: done?.revoked, failed: done?.failed }, "revocation job DONE");
          }
          return;
        }
        if ((await this.jobs.addTargets(id, this.owner, missed, true)) === null) return;
      }
    } finally {
      clearInterval(renewal);
      this.holds.delete(hold);
      if (this.stopping && !hold.lost) await this.jobs.release(id, this.owner).catch(() => undefined);
    }
  }

  /** Settles or requeues the targets an earlier holder left `in_progress` (see resume-targets.ts). */
  private resume(job: RevocationJob, open: RevocationTarget[], hold: Hold): Promise<RevocationTarget[]> {
    return resumeTargets({ jobs: this.jobs, store: this.store, owner: this.owner, now: this.now, onLost: () => this.lose(hold) }, job, open);
  }

  /** Revokes the open targets, `concurrency` at a time, until all are settled (or the job stops here). */
  private async work(job: RevocationJob, open: RevocationTarget[], hold: Hold): Promise<void> {
    const queue = [...open].sort((a, b) => a.notBefore - b.notBefore);
    let inFlight = 0;
    const actor: Actor = { sub: job.requestedBy, requestId: `revocation-job:${job.id}`, log: this.log.child({ jobId: job.id }) };
    const halted = () => hold.lost || hold.credentialsRefused || this.stopping;
    const sleep = (ms: number) => nap(hold, ms);
    const worker = async () => {
      while (!halted()) {
        const next = queue[0];
        if (next === undefined) {
          if (inFlight === 0) return;
          await sleep(RETRY_CAP_MS); // woken when a target in flight settles or comes back
          continue;
        }
        const wait = next.notBefore - this.now();
        if (wait > 0) {
          await sleep(wait);
          continue;
        }
        queue.shift();
        inFlight += 1;
        try {
          const retry = await this.revokeOne(job, next, actor, hold);
          if (retry !== null) {
            queue.push(retry);
            queue.sort((a, b) => a.notBefore - b.notBefore);
          }
        } finally {
          inFlight -= 1;
          this.wakeAll(hold);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.settings.concurrency) }, worker));
  }

  /** One try of one target (see revoke-target.ts). Resolves to the target to try again later, or null. */
  private revokeOne(job: RevocationJob, target: RevocationTarget, actor: Actor, hold: Hold): Promise<RevocationTarget | null> {
    const deps = {
      jobs: this.jobs,
      sessions: this.sessions,
      owner: this.owner,
      maxAttempts: this.settings.maxAttempts,
      now: this.now,
      onLost: () => this.lose(hold),
    };
    return revokeTarget(deps, job, target, actor, hold);
  }

  private lose(hold: Hold): void {
    loseHold(hold, this.log);
  }

  private wakeAll(hold: Hold): void {
    wakeAll(hold);
  }
}
