/**
 * The revocation runner (the kill switch's engine): starts jobs, takes over jobs whose holder
 * stopped, and keeps one `JobRun` per job this process holds (job-run.ts: the state, the lease and
 * the workers of one job). Target selection lives in targets.ts, takeover of interrupted targets in
 * resume-targets.ts, what one revoke try means for its target in revoke-target.ts.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { systemBackgroundClock, type BackgroundClock } from "../../base/clock.js";
import type { WorkerSessionService } from "../service.js";
import type { SessionStore } from "../store.js";
import { JobRun, type JobRunSettings } from "./job-run.js";
import type { JobStore } from "./job-store.js";
import type { RevocationFilters, RevocationJob } from "./job.js";

export interface RevocationSettings extends JobRunSettings {
  /** How often every runner looks for RUNNING jobs nobody holds (and once at start). */
  pollMs: number;
}

export interface RunnerDeps {
  jobs: JobStore;
  /** The ledger: target lists come from its createdBy index; a takeover checks its records. */
  store: SessionStore;
  /** Every revoke goes through the service: ordering, budget, breaker, ledger, audit. */
  sessions: Pick<WorkerSessionService, "revoke" | "read">;
  logger: Logger;
  settings: RevocationSettings;
  /** Every wait, lease time and timestamp of the jobs. Default: the real clock. */
  clock?: BackgroundClock;
}

/**
 * Runs revocation jobs (the kill switch). One per process; every replica runs one.
 *
 * - `startJob`: records the job (RUNNING, leased to this runner), lists its targets from the ledger,
 *   answers, and revokes in the background.
 * - Each target is marked `in_progress` before its revoke, which goes through
 *   `WorkerSessionService.revoke` with the job's `requestedBy` as the actor: per-profile ordering, the
 *   shared Deel budget, breaker, ledger update and audit line, exactly as an interactive revoke, with
 *   one Deel attempt per try. `settings.concurrency` revokes are in flight at once.
 * - The job is the one retry layer: RATE_LIMITED and UPSTREAM_UNAVAILABLE put the target back with a
 *   wait, up to `maxAttempts` tries; any other failure (NOT_FOUND, …) counts it as failed.
 *   UPSTREAM_CREDENTIALS (Deel refuses the organization's token) ends the job FAILED: nothing more can
 *   succeed.
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
  /** The jobs held here, each with the promise of its run's end. */
  private readonly runs = new Map<string, { run: JobRun; ended: Promise<void> }>();
  private readonly jobs: JobStore;
  private readonly store: SessionStore;
  private readonly sessions: Pick<WorkerSessionService, "revoke" | "read">;
  private readonly log: Logger;
  private readonly settings: RevocationSettings;
  private readonly clock: BackgroundClock;
  private readonly pollingEnded = new AbortController();
  private polling: Promise<void> | undefined;
  private stopping = false;

  constructor(deps: RunnerDeps) {
    this.jobs = deps.jobs;
    this.store = deps.store;
    this.sessions = deps.sessions;
    this.log = deps.logger.child({ component: "revocation-jobs" });
    this.settings = deps.settings;
    this.clock = deps.clock ?? systemBackgroundClock;
  }

  /** Looks for orphaned jobs now, then `pollMs` after each look, until `stop`. */
  start(): void {
    if (this.polling !== undefined || this.stopping) return;
    this.polling = this.pollUntilStopped();
  }

  /**
   * Starts a job: recorded (from then on it blocks creates), its targets listed from the ledger,
   * then run in the background. Resolves to the job as it stands once listed.
   */
  async startJob(filters: RevocationFilters, requestedBy: string): Promise<RevocationJob> {
    if (this.stopping) throw new Error("the revocation runner is stopping");
    const id = randomUUID();
    const leasedAt = this.clock.now();
    await this.jobs.create({ id, filters, requestedBy, startedAt: new Date(leasedAt) }, this.owner, this.settings.leaseMs);
    const created = await this.jobs.get(id);
    if (created === null) throw new Error(`revocation job ${id} vanished right after it was recorded`);
    const run = this.hold(id, leasedAt);
    await run.listed;
    this.log.info({ jobId: id, requestedBy, createdBy: filters.createdBy, profileIds: filters.profileIds?.length ?? null, onlyActive: filters.onlyActive }, "revocation job started");
    return (await this.jobs.get(id)) ?? created;
  }

  /** The job as it stands, or null. */
  get(id: string): Promise<RevocationJob | null> {
    return this.jobs.get(id);
  }

  /** Resolves once every job held here has stopped (in-flight revokes finished) and its lease is released. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.pollingEnded.abort();
    // A look under way ends first: it claims nothing after this.
    await this.polling;
    for (const { run } of this.runs.values()) run.stop();
    while (this.runs.size > 0) await Promise.allSettled([...this.runs.values()].map(({ ended }) => ended));
  }

  private async pollUntilStopped(): Promise<void> {
    for (;;) {
      await this.poll();
      try {
        await this.clock.sleepInBackground(this.settings.pollMs, this.pollingEnded.signal);
      } catch {
        return;
      }
    }
  }

  /** Claims every RUNNING job nobody holds (an expired lease) and runs it here. */
  private async poll(): Promise<void> {
    try {
      for (const id of await this.jobs.running()) {
        if (this.stopping) break;
        if (this.runs.has(id)) continue;
        const leasedAt = this.clock.now();
        if (await this.jobs.claim(id, this.owner, this.settings.leaseMs)) {
          this.log.info({ jobId: id }, "took over a revocation job");
          this.hold(id, leasedAt);
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, "could not look for revocation jobs to resume");
    }
  }

  /** Runs a job whose lease this runner took at `leasedAt`, until its run ends here. */
  private hold(id: string, leasedAt: number): JobRun {
    const { jobs, store, sessions, clock, owner } = this;
    const { leaseMs, concurrency, maxAttempts } = this.settings;
    const run = new JobRun({ jobs, store, sessions, clock, owner, log: this.log.child({ jobId: id }), settings: { leaseMs, concurrency, maxAttempts } }, id, leasedAt);
    if (this.stopping) run.stop();
    const ended = run
      .run()
      .catch((error: unknown) => this.log.warn({ err: error, jobId: id }, "revocation job paused; it resumes on the next poll"))
      .finally(() => this.runs.delete(id));
    this.runs.set(id, { run, ended });
    return run;
  }
}
