import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { classifyFailure } from "../../errors.js";
import type { Actor, WorkerSessionService } from "../service.js";
import type { SessionStore } from "../store.js";
import type { JobStore } from "./job-store.js";
import { isSettled, type RevocationFilters, type RevocationJob, type RevocationTarget } from "./job.js";

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
 * A target an earlier holder left in progress (and the ledger does not show revoked) waits this long
 * before its new try: the dead holder may still hold the profile's ordering lock in Redis, which
 * lapses within 5 s; meanwhile the other targets keep the budget busy.
 */
const INTERRUPTED_RETRY_DELAY_MS = 5_000;
/** Ledger reads are made in batches of this many ids. */
const READ_BATCH = 500;
/** Waits between tries of one target: doubled per try from this, capped (Deel's Retry-After wins when longer). */
const RETRY_BASE_MS = 1_000;
const RETRY_CAP_MS = 30_000;

/** A job being run here: whether the lease is still ours, and a way to wake sleeping workers. */
interface Hold {
  lost: boolean;
  /** Deel refused the organization's credentials: no revoke can succeed, the job stops FAILED. */
  credentialsRefused: boolean;
  wake: Array<() => void>;
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
  private async matching(filters: RevocationFilters): Promise<string[]> {
    let candidates: string[];
    if (filters.createdBy !== null) {
      candidates = (await this.store.listByCreator(filters.createdBy)).map((record) => record.profileId);
      if (filters.profileIds !== null) {
        const named = new Set(filters.profileIds);
        candidates = candidates.filter((id) => named.has(id));
      }
    } else {
      candidates = [...new Set(filters.profileIds ?? [])];
    }
    const matched: string[] = [];
    for (let start = 0; start < candidates.length; start += READ_BATCH) {
      const batch = candidates.slice(start, start + READ_BATCH);
      const entries = await this.sessions.read(batch);
      for (const [i, entry] of entries.entries()) {
        if (entry === null || entry === undefined) continue;
        if (filters.createdBy !== null && entry.record.createdBy !== filters.createdBy) continue;
        if (filters.onlyActive && entry.status !== "ACTIVE" && entry.status !== "UNKNOWN") continue;
        matched.push(batch[i] as string);
      }
    }
    return matched;
  }

  private async run(id: string): Promise<void> {
    const hold: Hold = { lost: false, credentialsRefused: false, wake: [] };
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

  /**
   * Targets an earlier holder left `in_progress`: one whose ledger record was revoked at or after the
   * job's start was revoked (by that holder, or by someone else since) and is counted so, without a
   * Deel call; any other goes back in the queue.
   */
  private async resume(job: RevocationJob, open: RevocationTarget[], hold: Hold): Promise<RevocationTarget[]> {
    const interrupted = open.filter((target) => target.state === "in_progress");
    if (interrupted.length === 0) return open;
    const done = new Set<string>();
    for (let start = 0; start < interrupted.length; start += READ_BATCH) {
      const batch = interrupted.slice(start, start + READ_BATCH);
      const records = await this.store.getMany(batch.map((target) => target.profileId));
      for (const [i, record] of records.entries()) {
        const target = batch[i] as RevocationTarget;
        if (record === null || record === undefined || record.revokedAt === null || record.revokedAt.getTime() < job.startedAt.getTime()) continue;
        if (!(await this.jobs.updateTarget(job.id, this.owner, { ...target, state: "revoked", lastError: null }))) {
          this.lose(hold);
          return [];
        }
        done.add(target.profileId);
      }
    }
    const retryAt = this.now() + INTERRUPTED_RETRY_DELAY_MS;
    return open
      .filter((target) => !done.has(target.profileId))
      .map((target) => (target.state === "in_progress" ? { ...target, notBefore: Math.max(target.notBefore, retryAt) } : target));
  }

  /** Revokes the open targets, `concurrency` at a time, until all are settled (or the job stops here). */
  private async work(job: RevocationJob, open: RevocationTarget[], hold: Hold): Promise<void> {
    const queue = [...open].sort((a, b) => a.notBefore - b.notBefore);
    let inFlight = 0;
    const actor: Actor = { sub: job.requestedBy, requestId: `revocation-job:${job.id}`, log: this.log.child({ jobId: job.id }) };
    const halted = () => hold.lost || hold.credentialsRefused || this.stopping;
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        hold.wake.push(done);
      });
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

  /** One try of one target. Resolves to the target to try again later, or null. */
  private async revokeOne(job: RevocationJob, target: RevocationTarget, actor: Actor, hold: Hold): Promise<RevocationTarget | null> {
    const attempt: RevocationTarget = { ...target, state: "in_progress", attempts: target.attempts + 1 };
    // Written before Deel is called: a holder taking over knows Deel may have been reached.
    if (!(await this.jobs.updateTarget(job.id, this.owner, attempt))) {
      this.lose(hold);
      return null;
    }
    let code: string;
    let retryAfterSeconds: number | undefined;
    try {
      await this.sessions.revoke(actor, target.profileId);
      if (!(await this.jobs.updateTarget(job.id, this.owner, { ...attempt, state: "revoked", lastError: null }))) this.lose(hold);
      return null;
    } catch (error) {
      const failure = classifyFailure(error);
      code = failure?.code ?? "INTERNAL_SERVER_ERROR";
      retryAfterSeconds = failure?.retryAfterSeconds;
    }
    let next: RevocationTarget;
    if (code === "UPSTREAM_CREDENTIALS") {
      hold.credentialsRefused = true;
      next = { ...attempt, state: "pending", lastError: code };
    } else if ((code === "RATE_LIMITED" || code === "UPSTREAM_UNAVAILABLE") && attempt.attempts < this.settings.maxAttempts) {
      const backoff = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt.attempts - 1));
      next = { ...attempt, state: "pending", lastError: code, notBefore: this.now() + Math.max(backoff, (retryAfterSeconds ?? 0) * 1000) };
    } else {
      next = { ...attempt, state: "failed", lastError: code };
    }
    if (!(await this.jobs.updateTarget(job.id, this.owner, next))) {
      this.lose(hold);
      return null;
    }
    return next.state === "pending" && !hold.credentialsRefused ? next : null;
  }

  private lose(hold: Hold): void {
    if (!hold.lost) this.log.warn("lost the lease of a revocation job to another runner; it carries on there");
    hold.lost = true;
    this.wakeAll(hold);
  }

  private wakeAll(hold: Hold): void {
    const waiting = hold.wake.splice(0);
    for (const wake of waiting) wake();
  }
}
