/**
 * One revocation job held by this process, from the lease it was given to the end of its run here:
 * its state, its lease and its workers in one place. The state is a union (`JobRunState`); every
 * change goes through `nextState` (the whole transition table) by way of `JobRun.apply`, which also
 * wakes the workers; the workers, the lease's renewal and the run read that state and nothing else.
 *
 * What a run promises (README: Incident response):
 *
 * - The lease: renewed every quarter of `leaseMs`. A renewal the store refuses, or a write of a
 *   target it refuses, means another runner holds the job: `lease_lost`, no further revoke starts
 *   and nothing more is written. Waking (a renewal, or a worker about to revoke) to find that the
 *   lease has lapsed by this clock (a timer that fired late, a renewal that kept failing) gives the
 *   job up the same way: the store may already have handed it over, and the poll of some runner
 *   claims it afresh from what the store holds.
 * - Takeover: targets an earlier holder left `in_progress` are settled or retried (resume-targets.ts).
 * - The targets: `concurrency` revokes in flight, each written `in_progress` before its Deel call,
 *   each one try of `WorkerSessionService.revoke` asking Deel for one attempt: the job is the only
 *   retry layer, on the schedule of revoke-target.ts.
 * - Credentials refused: no revoke starts after it; those in flight finish; the job ends FAILED.
 * - The targets include mints in flight and lost mints (their intents, targets.ts): a revoke takes
 *   the profile's turn, so it lands after a mint in flight ends, and the job is DONE only when no
 *   mint it targets can still land.
 * - A target whose record was revoked since the job began (another job running on the same
 *   profiles got there first) is counted revoked without a second Deel call.
 * - Every target settled: the filters are listed again, and a session recorded by a create that
 *   passed its check just before the job began is added and revoked. Then DONE.
 * - `stop()`: no revoke starts after it; those in flight finish; the lease is released, so that
 *   another runner takes the job over at once.
 *
 * Every wait, deadline and timestamp reads the injected clock, and a worker that wakes reads the
 * clock again before it acts: a timer may fire late.
 */
import type { Logger } from "pino";
import { assertNever } from "../../base/assert-never.js";
import type { BackgroundClock } from "../../base/clock.js";
import { storedProfileId } from "../../base/profile-id.js";
import { JOB_REQUEST_ID_PREFIX } from "../../base/revocation-job.js";
import type { Actor, WorkerSessionService } from "../service.js";
import type { SessionStore } from "../store.js";
import type { JobStore } from "./job-store.js";
import { isSettled, type RevocationFilters, type RevocationTarget } from "./job.js";
import { resumeTargets } from "./resume-targets.js";
import { judgeRevokeFailure, RETRY_CAP_MS, targetAfterFailure, targetInProgress, targetRevoked } from "./revoke-target.js";
import { matchingTargets } from "./targets.js";

/** Why a FAILED job stopped, as its `failureReason` reads. */
export const CREDENTIALS_REFUSED_REASON = "Deel refused the gateway's organization credentials; the operator must fix them, then start a new job";

/**
 * Where a run stands.
 *
 * - `running`: revokes start.
 * - `credentials_refused`: Deel refused the organization's token; in-flight revokes finish, then FAILED.
 * - `stopping`: the runner stops; in-flight revokes finish, then the lease is released.
 * - `lease_lost`: another runner holds the job (or may: the lease lapsed); nothing more is written. Final.
 * - `finished`: the run is over here. `DONE` / `FAILED`: written to the store. `released`: stopped,
 *   lease given up. `not_running`: the job was no longer RUNNING. `interrupted`: a store failure ended
 *   the run; the lease lapses and a poll resumes the job. Final.
 */
export type JobRunState =
  | { kind: "running" }
  | { kind: "credentials_refused"; lastError: string }
  | { kind: "stopping" }
  | { kind: "lease_lost" }
  | { kind: "finished"; outcome: JobRunOutcome };

export type JobRunOutcome = "DONE" | "FAILED" | "released" | "not_running" | "interrupted";

/** What happens to a run. */
export type JobRunEvent =
  | { type: "credentials_refused"; lastError: string }
  | { type: "stop" }
  /** `refused`: the store refused a write or a renewal. `lapsed`: this clock says the lease has run out. */
  | { type: "lease_lost"; why: "refused" | "lapsed" }
  | { type: "ended"; outcome: JobRunOutcome };

/**
 * The transition table. `lease_lost` and `finished` are final; credentials refused only matter to a
 * running job; a stop wins over credentials refused (the lease is released and the next holder meets
 * the refusal again); a lost lease wins over everything that is not final.
 */
export function nextState(state: JobRunState, event: JobRunEvent): JobRunState {
  switch (state.kind) {
    case "lease_lost":
    case "finished":
      return state;
    case "running":
    case "credentials_refused":
    case "stopping":
      break;
    default:
      return assertNever(state);
  }
  switch (event.type) {
    case "credentials_refused":
      return state.kind === "running" ? { kind: "credentials_refused", lastError: event.lastError } : state;
    case "stop":
      return state.kind === "stopping" ? state : { kind: "stopping" };
    case "lease_lost":
      return { kind: "lease_lost" };
    case "ended":
      return { kind: "finished", outcome: event.outcome };
    default:
      return assertNever(event);
  }
}

export interface JobRunSettings {
  /** How long a runner's hold on a job lasts unless renewed (renewed every quarter of it). */
  leaseMs: number;
  /**
   * Revokes one job keeps in flight: `DEEL_RATE_LIMIT_RPS`, so that the shared budget always has
   * work from the job while an interactive call waits behind at most one window of it.
   */
  concurrency: number;
  /** Tries per target (each one Deel attempt) after RATE_LIMITED / UPSTREAM_UNAVAILABLE before it counts as failed. */
  maxAttempts: number;
}

export interface JobRunDeps {
  jobs: JobStore;
  /** The ledger: a takeover checks its records. */
  store: SessionStore;
  /** Every revoke goes through the service (ordering, budget, breaker, ledger, audit); target lists are read through it. */
  sessions: Pick<WorkerSessionService, "revoke" | "read">;
  clock: BackgroundClock;
  /** Already scoped to the job. */
  log: Logger;
  /** The lease owner id of the runner holding the job. */
  owner: string;
  settings: JobRunSettings;
}

/** One job held by this process. Made by the runner once it holds the lease; `run()` once. */
export class JobRun {
  readonly id: string;
  private state: JobRunState = { kind: "running" };
  /** Before this (epoch ms, this clock) the lease is surely ours: the last claim's send time + leaseMs. */
  private leaseUntil: number;
  /** Aborted to wake every sleeping worker (then replaced). */
  private wakeup = new AbortController();
  private readonly renewalEnded = new AbortController();
  private markListed: () => void = () => undefined;
  /** The job's start, once read: a target revoked since then needs no Deel call. */
  private startedAt: Date | undefined;
  /** Resolves once the target list is written, or the run could not write it (it ended, or listing failed). */
  readonly listed: Promise<void>;
  private readonly deps: JobRunDeps;

  /** `leasedAt`: when the create or claim that gave this runner the lease was sent (epoch ms). */
  constructor(deps: JobRunDeps, id: string, leasedAt: number) {
    this.deps = deps;
    this.id = id;
    this.leaseUntil = leasedAt + deps.settings.leaseMs;
    this.listed = new Promise<void>((resolve) => {
      this.markListed = resolve;
    });
  }

  /** Where the run stands now. */
  get current(): JobRunState {
    return this.state;
  }

  /** No revoke starts after this; those in flight finish; then `run()` releases the lease and resolves. */
  stop(): void {
    this.apply({ type: "stop" });
  }

  /**
   * Runs the job here until it is finished, stopped or lost. Rejects when the store fails (the
   * state is then `finished`/`interrupted`, unless it was lost or stopped first).
   */
  async run(): Promise<void> {
    const renewal = this.keepLease();
    let failed = false;
    let failure: unknown;
    try {
      await this.work();
    } catch (error) {
      failed = true;
      failure = error;
    }
    this.renewalEnded.abort();
    await renewal;
    this.markListed();
    if (this.kind() === "stopping") {
      await this.deps.jobs.release(this.id, this.deps.owner).catch(() => undefined);
      this.apply({ type: "ended", outcome: "released" });
    } else if (failed) {
      this.apply({ type: "ended", outcome: "interrupted" });
    }
    if (failed) throw failure;
  }

  /** The one way the state changes: through the table, logged, and every sleeping worker woken to read it. */
  private apply(event: JobRunEvent): void {
    const before = this.state;
    const after = nextState(before, event);
    if (after === before) return;
    this.state = after;
    if (after.kind === "lease_lost") {
      this.deps.log.warn(
        event.type === "lease_lost" && event.why === "lapsed"
          ? "the lease of a revocation job lapsed before it was renewed; giving it up to whichever runner claims it"
          : "lost the lease of a revocation job to another runner; it carries on there",
      );
    }
    this.wakeWorkers();
  }

  /** The state's kind, read afresh (a method, so that no narrowing survives an await). */
  private kind(): JobRunState["kind"] {
    return this.state.kind;
  }

  private async work(): Promise<void> {
    const { jobs, store, clock, log } = this.deps;
    if (this.kind() !== "running") return;
    const job = await jobs.get(this.id);
    if (job === null || job.status !== "RUNNING") {
      this.apply({ type: "ended", outcome: "not_running" });
      return;
    }
    if (!job.planned && !(await this.addTargets(await this.matching(job.filters)))) return;
    this.markListed();
    const actor: Actor = { sub: job.requestedBy, requestId: `${JOB_REQUEST_ID_PREFIX}${job.id}`, log, jobId: job.id };
    this.startedAt = job.startedAt;
    for (;;) {
      const targets = await jobs.targets(this.id);
      const resumed = await resumeTargets(store, job, targets.filter((target) => !isSettled(target.state)), clock.now());
      for (const target of resumed.revoked) if (!(await this.write(target))) return;
      await this.revokeAll(resumed.toTry, actor);
      const state = this.state;
      switch (state.kind) {
        case "running":
          break;
        case "credentials_refused":
          await this.finish("FAILED", CREDENTIALS_REFUSED_REASON);
          return;
        case "stopping":
        case "lease_lost":
        case "finished":
          return;
        default:
          assertNever(state);
      }
      // Everything settled. Anything matching now that is not a target yet was recorded by a create
      // that passed its check just before the job began: add it, and go on.
      const known = new Set(targets.map((target) => target.profileId));
      const missed = (await this.matching({ ...job.filters, onlyActive: true })).filter((profileId) => !known.has(profileId));
      if (missed.length === 0) {
        await this.finish("DONE", null);
        return;
      }
      if (!(await this.addTargets(missed))) return;
    }
  }

  /** Revokes the targets, `concurrency` at a time, until all are settled or the state leaves `running`. */
  private async revokeAll(targets: readonly RevocationTarget[], actor: Actor): Promise<void> {
    const queue = [...targets].sort(byNotBefore);
    let inFlight = 0;
    const worker = async () => {
      while (this.kind() === "running") {
        const next = queue[0];
        if (next === undefined) {
          if (inFlight === 0) return;
          await this.pause(RETRY_CAP_MS); // woken when a target in flight settles or comes back
          continue;
        }
        // Read on every turn, after every wake: the plan made before a sleep may be stale.
        const now = this.deps.clock.now();
        if (!this.leaseHeld(now)) return;
        if (next.notBefore > now) {
          await this.pause(next.notBefore - now);
          continue;
        }
        queue.shift();
        inFlight += 1;
        try {
          const again = await this.tryTarget(next, actor);
          if (again !== null) {
            queue.push(again);
            queue.sort(byNotBefore);
          }
        } finally {
          inFlight -= 1;
          this.wakeWorkers();
        }
      }
    };
    // Every worker ends before the run goes on (a failed one does not leave others running unseen).
    const results = await Promise.allSettled(Array.from({ length: Math.max(1, this.deps.settings.concurrency) }, worker));
    const rejected = results.find((result) => result.status === "rejected");
    if (rejected !== undefined) throw rejected.reason;
  }

  /** One try of one target. Resolves to the target to try again later, or null. */
  private async tryTarget(target: RevocationTarget, actor: Actor): Promise<RevocationTarget | null> {
    const attempt = targetInProgress(target);
    // Written before Deel is called: a holder taking over knows Deel may have been reached.
    if (!(await this.write(attempt))) return null;
    let next: RevocationTarget;
    try {
      // A profile revoked since the job began (by another job running on it, or by anyone) is not
      // revoked again: the service decides that in the profile's turn, after a revoke in flight landed.
      await this.deps.sessions.revoke(actor, storedProfileId(target.profileId), { maxAttempts: 1, unlessRevokedSince: this.startedAt });
      next = targetRevoked(attempt);
    } catch (error) {
      const failure = judgeRevokeFailure(error);
      if (failure.kind === "credentials") this.apply({ type: "credentials_refused", lastError: failure.label });
      next = targetAfterFailure(attempt, failure, this.deps.clock.now(), this.deps.settings.maxAttempts);
    }
    if (!(await this.write(next))) return null;
    return next.state === "pending" && this.kind() === "running" ? next : null;
  }

  /** Renews the lease every quarter of it until the run ends; a refusal or a lapse loses it. */
  private async keepLease(): Promise<void> {
    const { jobs, clock, owner, settings } = this.deps;
    const every = Math.max(50, Math.floor(settings.leaseMs / 4));
    for (;;) {
      try {
        await clock.sleepInBackground(every, this.renewalEnded.signal);
      } catch {
        return;
      }
      if (!this.leaseHeld(clock.now())) return;
      const sentAt = clock.now();
      let ours: boolean;
      try {
        ours = await jobs.claim(this.id, owner, settings.leaseMs);
      } catch (error) {
        // Not fatal: the next renewal may pass; if none does before the lease lapses, the run gives the job up.
        this.deps.log.warn({ err: error }, "could not renew the lease of a revocation job");
        continue;
      }
      if (!ours) {
        this.apply({ type: "lease_lost", why: "refused" });
        return;
      }
      this.leaseUntil = sentAt + settings.leaseMs;
    }
  }

  /** Whether the lease is surely ours at `now`; when it is not, the run gives the job up. */
  private leaseHeld(now: number): boolean {
    if (now < this.leaseUntil) return this.kind() !== "lease_lost";
    this.apply({ type: "lease_lost", why: "lapsed" });
    return false;
  }

  /** Writes a target; false (and the lease lost) when the store refuses: another runner holds the job. */
  private async write(target: RevocationTarget): Promise<boolean> {
    if (await this.deps.jobs.updateTarget(this.id, this.deps.owner, target)) return true;
    this.apply({ type: "lease_lost", why: "refused" });
    return false;
  }

  /** Adds targets (marking the job planned); false (and the lease lost) when the store refuses. */
  private async addTargets(profileIds: readonly string[]): Promise<boolean> {
    if ((await this.deps.jobs.addTargets(this.id, this.deps.owner, profileIds, true)) !== null) return true;
    this.apply({ type: "lease_lost", why: "refused" });
    return false;
  }

  private async finish(status: "DONE" | "FAILED", reason: string | null): Promise<void> {
    const { jobs, owner, clock, log } = this.deps;
    if (!(await jobs.finish(this.id, owner, status, new Date(clock.now()), reason))) {
      this.apply({ type: "lease_lost", why: "refused" });
      return;
    }
    this.apply({ type: "ended", outcome: status });
    if (status === "FAILED") {
      log.error(`revocation job FAILED: ${reason ?? ""}`);
      return;
    }
    const done = await jobs.get(this.id);
    log.info({ total: done?.total, revoked: done?.revoked, failed: done?.failed }, "revocation job DONE");
  }

  /** The profiles whose sessions (or mints under way or lost) match the filters now. */
  private matching(filters: RevocationFilters): Promise<string[]> {
    return matchingTargets(this.deps.store, filters, this.deps.clock.now());
  }

  /** Sleeps `ms` by the clock, or until the workers are woken (a target settled or came back, the state changed). */
  private async pause(ms: number): Promise<void> {
    try {
      await this.deps.clock.sleep(ms, this.wakeup.signal);
    } catch {
      // Woken.
    }
  }

  private wakeWorkers(): void {
    this.wakeup.abort();
    this.wakeup = new AbortController();
  }
}

function byNotBefore(a: RevocationTarget, b: RevocationTarget): number {
  return a.notBefore - b.notBefore;
}
