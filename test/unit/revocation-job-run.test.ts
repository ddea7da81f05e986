/**
 * A revocation job's run as a state machine, on a clock the test moves by hand: the in-memory job
 * store and ledger read the same clock, the real WorkerSessionService revokes through a scripted
 * Deel. No real time passes; every "when" below is the fake clock's.
 */
import { randomUUID } from "node:crypto";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { BackgroundClock } from "../../src/base/clock.js";
import { DeelError } from "../../src/deel/errors.js";
import type { CallOptions, DeelApi, DeelRevocation, MintedSession } from "../../src/deel/types.js";
import { storedProfileId } from "../../src/base/profile-id.js";
import { RevocationInProgressError } from "../../src/sessions/errors.js";
import { CREDENTIALS_REFUSED_REASON, JobRun, nextState, type JobRunSettings, type JobRunState } from "../../src/sessions/jobs/job-run.js";
import type { RevocationFilters } from "../../src/sessions/jobs/job.js";
import { createJobStore } from "../../src/sessions/jobs/create-job-store.js";
import { INTERRUPTED_RETRY_DELAY_MS } from "../../src/sessions/jobs/resume-targets.js";
import { RevocationRunner } from "../../src/sessions/jobs/runner.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { unfenced } from "../../src/sessions/fencing.js";
import { intentStaleAfterMs } from "../../src/sessions/intent.js";
import { Ledger } from "../../src/sessions/ledger.js";
import { WorkerSessionService } from "../../src/sessions/service.js";

const START = Date.parse("2030-01-01T00:00:00Z");
const LEASE_MS = 8_000;
const POLL_MS = 1_000;
const LEAKED = "svc-leaked";
const silent = pino({ level: "silent" });

/** Lets every promise chain the code under test started run to its next wait on the clock. */
async function settle(): Promise<void> {
  for (let i = 0; i < 30; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A clock moved by hand. A sleeper wakes when time reaches its due time, in due order. */
class ManualClock implements BackgroundClock {
  private at: number;
  private sleepers: Array<{ due: number; wake: () => void }> = [];

  constructor(at: number) {
    this.at = at;
  }

  now(): number {
    return this.at;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const sleeper = {
        due: this.at + Math.max(0, ms),
        wake: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((other) => other !== sleeper);
        reject(signal?.reason as Error);
      };
      this.sleepers.push(sleeper);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  sleepInBackground(ms: number, signal?: AbortSignal): Promise<void> {
    return this.sleep(ms, signal);
  }

  /** Moves time on by `ms`, waking each sleeper at its own due time and letting the code run between. */
  async advance(ms: number): Promise<void> {
    const end = this.at + ms;
    for (;;) {
      await settle();
      const next = this.sleepers.filter((sleeper) => sleeper.due <= end).sort((a, b) => a.due - b.due)[0];
      if (next === undefined) break;
      this.sleepers = this.sleepers.filter((sleeper) => sleeper !== next);
      this.at = Math.max(this.at, next.due);
      next.wake();
    }
    this.at = end;
    await settle();
  }

  /** Moves time on by `ms` at once, as a host too busy to fire timers: every sleeper due meanwhile wakes late. */
  async jump(ms: number): Promise<void> {
    this.at += ms;
    const due = this.sleepers.filter((sleeper) => sleeper.due <= this.at);
    this.sleepers = this.sleepers.filter((sleeper) => sleeper.due > this.at);
    for (const sleeper of due) sleeper.wake();
    await settle();
  }
}

/** What Deel answers one revoke with: a success, a thrown DeelError, or an answer the test releases later. */
type Answer = "ok" | DeelError | { release: () => void; promise: Promise<void> };

function heldAnswer(): { release: () => void; promise: Promise<void> } {
  let release: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { release, promise };
}

/** A Deel whose revokes answer as the test scripts them per profile (then "ok"), recording each call and when. */
function aScriptedDeel(clock: ManualClock) {
  const script = new Map<string, Answer[]>();
  const mints = new Map<string, Answer[]>();
  const calls: Array<{ profileId: string; at: number; options: CallOptions | undefined }> = [];
  /** Every mint's answer, in the order Deel gave them, and every revoke's: Deel's view of one profile. */
  const events: Array<{ kind: "minted" | "revoked"; profileId: string; at: number }> = [];
  const deel: DeelApi = {
    async createSession(profileId: string): Promise<MintedSession> {
      const answer = mints.get(profileId)?.shift() ?? "ok";
      if (answer !== "ok" && !(answer instanceof DeelError)) await answer.promise;
      // A lost answer (a DeelError that may have minted) still mints at Deel.
      if (answer instanceof DeelError && !answer.mayHaveMinted) throw answer;
      events.push({ kind: "minted", profileId, at: clock.now() });
      if (answer instanceof DeelError) throw answer;
      return { token: `token-${profileId}`, expiresAt: new Date(clock.now() + 3_600_000), replayed: false };
    },
    async revokeSession(profileId: string, options?: CallOptions): Promise<DeelRevocation> {
      calls.push({ profileId, at: clock.now(), options });
      const answer = script.get(profileId)?.shift() ?? "ok";
      if (answer instanceof DeelError) throw answer;
      if (answer !== "ok") await answer.promise;
      events.push({ kind: "revoked", profileId, at: clock.now() });
      return {};
    },
  };
  return {
    deel,
    calls,
    events,
    /** Whether Deel holds a live token for the profile: its last event is a mint. */
    live: (profileId: string) => events.filter((event) => event.profileId === profileId).at(-1)?.kind === "minted",
    answer: (profileId: string, ...answers: Answer[]) => script.set(profileId, answers),
    mint: (profileId: string, ...answers: Answer[]) => mints.set(profileId, answers),
    callsFor: (profileId: string) => calls.filter((call) => call.profileId === profileId),
  };
}

const runners: RevocationRunner[] = [];
afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.stop();
});

/** The parts a job runs on, all on one manual clock, with `count` sessions minted by LEAKED. */
async function aWorld(count: number, settings: Partial<JobRunSettings> = {}) {
  const clock = new ManualClock(START);
  // One SQLite database in memory holds the ledger and the jobs, both timed by the manual clock.
  const storage = createStorage({ kind: "memory" }, { clock });
  const jobs = createJobStore(storage, { retentionMs: null, clock });
  const ledger = new Ledger(storage, { retentionMs: null, clock });
  const deel = aScriptedDeel(clock);
  /** Runs before the kill switch's check of every create (a test holds it to open a race). */
  let beforeGuard: () => Promise<void> = async () => undefined;
  const sessions = new WorkerSessionService({
    deel: deel.deel,
    store: ledger,
    clock,
    intentStaleAfterMs: intentStaleAfterMs(8000),
    // The app's guard: a running job refuses creates for its profiles and by its createdBy caller.
    createGuard: async (profileId, sub) => {
      const blocking = await jobs.blockingJob(profileId, sub);
      await beforeGuard();
      if (blocking !== null) throw new RevocationInProgressError(blocking.id, blocking.reason);
    },
  });
  const profiles = Array.from({ length: count }, () => randomUUID());
  for (const profileId of profiles) {
    await ledger.put({ profileId, createdAt: new Date(START - 1000), expiresAt: new Date(START + 3_600_000), revokedAt: null, createdBy: LEAKED, revokedBy: null }, unfenced("a test seeds the ledger"));
  }
  const runSettings: JobRunSettings = { leaseMs: LEASE_MS, concurrency: 1, maxAttempts: 3, ...settings };
  const filters: RevocationFilters = { createdBy: LEAKED, profileIds: null, onlyActive: true };

  /** A runner on this world (stopped after the test). */
  const aRunner = () => {
    const runner = new RevocationRunner({ jobs, store: ledger, sessions, logger: silent, clock, settings: { ...runSettings, pollMs: POLL_MS } });
    runners.push(runner);
    return runner;
  };

  /** A job recorded and listed by `owner`, and a JobRun holding it (not started). */
  const aHeldJob = async (owner = "runner-1") => {
    const id = randomUUID();
    await jobs.create({ id, filters, requestedBy: "operator", startedAt: new Date(clock.now()) }, owner, LEASE_MS);
    await jobs.addTargets(id, owner, profiles, true);
    const run = new JobRun({ jobs, store: ledger, sessions, clock, log: silent, owner, settings: runSettings }, id, clock.now());
    return { id, run };
  };

  /** A create of a session for `profileId` by `sub`, through the service (its outcome, never thrown). */
  const create = (profileId: string, sub = LEAKED) =>
    sessions.create({ sub, requestId: randomUUID(), log: silent }, storedProfileId(profileId), undefined).then(
      (created) => ({ ok: true as const, created }),
      (error: unknown) => ({ ok: false as const, error }),
    );
  const holdGuard = (gate: Promise<void>) => {
    beforeGuard = () => gate;
  };

  return { clock, jobs, ledger, deel, profiles, filters, aRunner, aHeldJob, create, holdGuard };
}

describe("the transition table of a job's run", () => {
  const running: JobRunState = { kind: "running" };

  it("keeps lease_lost and finished final, whatever happens next", () => {
    const finals: JobRunState[] = [{ kind: "lease_lost" }, { kind: "finished", outcome: "DONE" }];
    for (const state of finals) {
      expect(nextState(state, { type: "stop" })).toBe(state);
      expect(nextState(state, { type: "credentials_refused", lastError: "deel:credentials" })).toBe(state);
      expect(nextState(state, { type: "lease_lost", why: "refused" })).toBe(state);
      expect(nextState(state, { type: "ended", outcome: "released" })).toBe(state);
    }
  });

  it("lets a stop win over refused credentials, and ignores refused credentials once stopping", () => {
    const refused = nextState(running, { type: "credentials_refused", lastError: "deel:credentials" });
    expect(refused).toEqual({ kind: "credentials_refused", lastError: "deel:credentials" });
    expect(nextState(refused, { type: "stop" })).toEqual({ kind: "stopping" });
    const stopping: JobRunState = { kind: "stopping" };
    expect(nextState(stopping, { type: "credentials_refused", lastError: "deel:credentials" })).toBe(stopping);
  });

  it("lets a lost lease win over every state that is not final", () => {
    for (const state of [running, { kind: "credentials_refused", lastError: "x" }, { kind: "stopping" }] satisfies JobRunState[]) {
      expect(nextState(state, { type: "lease_lost", why: "lapsed" })).toEqual({ kind: "lease_lost" });
    }
  });
});

describe("a revocation job's run", () => {
  it("revokes every target with one Deel attempt each, then ends DONE", async () => {
    const world = await aWorld(3, { concurrency: 2 });
    const { id, run } = await world.aHeldJob();
    const ended = run.run();
    await world.clock.advance(0);
    await ended;

    expect(run.current).toEqual({ kind: "finished", outcome: "DONE" });
    expect(await world.jobs.get(id)).toMatchObject({ status: "DONE", total: 3, revoked: 3, failed: 0, finishedAt: new Date(START) });
    expect(world.deel.calls.map((call) => call.profileId).sort()).toEqual([...world.profiles].sort());
    expect(world.deel.calls.every((call) => call.options?.maxAttempts === 1)).toBe(true);
    for (const record of await world.ledger.getMany(world.profiles)) expect(record).toMatchObject({ revokedBy: "operator" });
  });

  it("tries a target again after a passing failure, no sooner than its backoff", async () => {
    const world = await aWorld(1);
    const [profileId] = world.profiles as [string];
    world.deel.answer(profileId, new DeelError("rate_limited", "429"), "ok");
    const { id, run } = await world.aHeldJob();
    const ended = run.run();
    await world.clock.advance(0);

    expect(await world.jobs.targets(id)).toEqual([{ profileId, state: "pending", attempts: 1, notBefore: START + 1_000, lastError: "deel:rate_limited" }]);
    await world.clock.advance(999);
    expect(world.deel.calls).toHaveLength(1);
    await world.clock.advance(1);
    await ended;
    expect(world.deel.calls.map((call) => call.at)).toEqual([START, START + 1_000]);
    expect(await world.jobs.get(id)).toMatchObject({ status: "DONE", revoked: 1, failed: 0 });
  });

  it("waits for Deel's Retry-After when it is longer than the backoff", async () => {
    const world = await aWorld(1);
    const [profileId] = world.profiles as [string];
    world.deel.answer(profileId, new DeelError("rate_limited", "429", { retryAfterSeconds: 7 }), "ok");
    const { run } = await world.aHeldJob();
    const ended = run.run();
    await world.clock.advance(10_000);
    await ended;
    expect(world.deel.callsFor(profileId).map((call) => call.at)).toEqual([START, START + 7_000]);
  });

  it("counts a target failed after maxAttempts passing failures, doubling the wait between tries", async () => {
    const world = await aWorld(1, { maxAttempts: 3 });
    const [profileId] = world.profiles as [string];
    const unavailable = () => new DeelError("unavailable", "502", { status: 502 });
    world.deel.answer(profileId, unavailable(), unavailable(), unavailable(), "ok");
    const { id, run } = await world.aHeldJob();
    const ended = run.run();
    await world.clock.advance(60_000);
    await ended;

    expect(world.deel.calls.map((call) => call.at)).toEqual([START, START + 1_000, START + 3_000]);
    expect(await world.jobs.targets(id)).toMatchObject([{ profileId, state: "failed", attempts: 3, lastError: "deel:unavailable" }]);
    expect(await world.jobs.get(id)).toMatchObject({ status: "DONE", revoked: 0, failed: 1 });
  });

  it("counts a target failed at once on a final refusal (Deel's 404)", async () => {
    const world = await aWorld(2);
    const [gone] = world.profiles as [string, string];
    world.deel.answer(gone, new DeelError("not_found", "404", { status: 404 }));
    const { id, run } = await world.aHeldJob();
    const ended = run.run();
    await world.clock.advance(0);
    await ended;
    expect(world.deel.callsFor(gone)).toHaveLength(1);
    expect(await world.jobs.get(id)).toMatchObject({ status: "DONE", revoked: 1, failed: 1 });
  });

  it("ends FAILED when Deel refuses the organization's credentials, starting no revoke after", async () => {
    const world = await aWorld(3);
    // Whichever target the run tries first meets this answer (targets come in no set order).
    for (const profileId of world.profiles) world.deel.answer(profileId, new DeelError("credentials", "401", { status: 401 }));
    const { id, run } = await world.aHeldJob();
    const ended = run.run();
    await world.clock.advance(0);
    await ended;

    expect(run.current).toEqual({ kind: "finished", outcome: "FAILED" });
    expect(world.deel.calls).toHaveLength(1);
    expect(await world.jobs.get(id)).toMatchObject({ status: "FAILED", failureReason: CREDENTIALS_REFUSED_REASON, revoked: 0 });
    expect((await world.jobs.targets(id)).find((target) => target.profileId === world.deel.calls[0]?.profileId)).toMatchObject({
      state: "pending",
      lastError: "deel:credentials",
    });
  });

  it("lists the filters again once every target is settled, and revokes a session recorded meanwhile before DONE", async () => {
    const world = await aWorld(1);
    const [first] = world.profiles as [string];
    const held = heldAnswer();
    world.deel.answer(first, held);
    const { id, run } = await world.aHeldJob();
    const ended = run.run();
    await world.clock.advance(0);
    // A create that passed its check just before the job began records its session now.
    const late = randomUUID();
    await world.ledger.put({ profileId: late, createdAt: new Date(START), expiresAt: new Date(START + 3_600_000), revokedAt: null, createdBy: LEAKED, revokedBy: null }, unfenced("a test seeds the ledger"));
    held.release();
    await world.clock.advance(0);
    await ended;

    expect(world.deel.callsFor(late)).toHaveLength(1);
    expect(await world.jobs.get(id)).toMatchObject({ status: "DONE", total: 2, revoked: 2 });
  });

  it("gives the job up when another runner holds its lease, writing nothing more", async () => {
    const world = await aWorld(3);
    const held = heldAnswer();
    // Whichever target the run tries first meets this answer (targets come in no set order).
    for (const profileId of world.profiles) world.deel.answer(profileId, held);
    const { id, run } = await world.aHeldJob("runner-1");
    const ended = run.run();
    await world.clock.advance(0);
    // Another runner holds the job now (as after this one was paused past its lease).
    await world.jobs.release(id, "runner-1");
    expect(await world.jobs.claim(id, "runner-2", LEASE_MS)).toBe(true);
    await world.clock.advance(LEASE_MS / 4);
    expect(run.current).toEqual({ kind: "lease_lost" });

    held.release();
    await world.clock.advance(0);
    await ended;
    expect(world.deel.calls).toHaveLength(1);
    // The revoke in flight finished, but its write was refused: runner-2's view stands.
    expect(await world.jobs.get(id)).toMatchObject({ status: "RUNNING", revoked: 0 });
    expect((await world.jobs.targets(id)).find((target) => target.profileId === world.deel.calls[0]?.profileId)).toMatchObject({ state: "in_progress" });
  });

  it("gives the job up when it wakes after its lease has lapsed (a late timer), starting no revoke after", async () => {
    const world = await aWorld(3);
    const held = heldAnswer();
    // Whichever target the run tries first meets this answer (targets come in no set order).
    for (const profileId of world.profiles) world.deel.answer(profileId, held);
    const { id, run } = await world.aHeldJob();
    const ended = run.run();
    await world.clock.advance(0);
    // The host stalls past the lease: the renewal's timer fires late, once the lease is over.
    await world.clock.jump(LEASE_MS + 1);
    expect(run.current).toEqual({ kind: "lease_lost" });

    held.release();
    await world.clock.advance(0);
    await ended;
    expect(world.deel.calls).toHaveLength(1);
    expect(await world.jobs.get(id)).toMatchObject({ status: "RUNNING" });
  });

  it("renews its lease every quarter of it while it runs, so no other runner can claim the job", async () => {
    const world = await aWorld(1);
    const held = heldAnswer();
    world.deel.answer(world.profiles[0] as string, held);
    const { id, run } = await world.aHeldJob("runner-1");
    const ended = run.run();
    await world.clock.advance(3 * LEASE_MS);
    expect(run.current).toEqual({ kind: "running" });
    expect(await world.jobs.claim(id, "runner-2", LEASE_MS)).toBe(false);
    held.release();
    await world.clock.advance(0);
    await ended;
    expect(run.current).toEqual({ kind: "finished", outcome: "DONE" });
  });
});

describe("the revocation runner", () => {
  it("takes over a job whose holder died once its lease expires: a target the ledger shows revoked is counted without Deel, an interrupted one is tried again after the others", async () => {
    const world = await aWorld(3);
    const [revokedMeanwhile, interrupted, pending] = world.profiles as [string, string, string];
    const id = randomUUID();
    await world.jobs.create({ id, filters: world.filters, requestedBy: "operator", startedAt: new Date(START) }, "dead-runner", LEASE_MS);
    await world.jobs.addTargets(id, "dead-runner", world.profiles, true);
    for (const profileId of [revokedMeanwhile, interrupted]) {
      await world.jobs.updateTarget(id, "dead-runner", { profileId, state: "in_progress", attempts: 1, notBefore: 0, lastError: null });
    }
    // The dead holder's revoke of this one reached Deel and the ledger before it died.
    await world.ledger.markRevoked(revokedMeanwhile, new Date(START + 10), "operator", unfenced("a test plays the dead holder"));

    const runner = world.aRunner();
    runner.start();
    await world.clock.advance(LEASE_MS);
    expect(world.deel.calls).toHaveLength(0);
    await world.clock.advance(POLL_MS);
    const takenOverAt = START + LEASE_MS + POLL_MS;
    expect(world.deel.calls.map((call) => [call.profileId, call.at])).toEqual([[pending, takenOverAt]]);

    await world.clock.advance(INTERRUPTED_RETRY_DELAY_MS);
    expect(world.deel.callsFor(interrupted).map((call) => call.at)).toEqual([takenOverAt + INTERRUPTED_RETRY_DELAY_MS]);
    expect(world.deel.callsFor(revokedMeanwhile)).toHaveLength(0);
    expect(await world.jobs.get(id)).toMatchObject({ status: "DONE", total: 3, revoked: 3, failed: 0 });
    expect((await world.jobs.targets(id)).find((target) => target.profileId === interrupted)).toMatchObject({ state: "revoked", attempts: 2 });
  });

  it("on stop, lets the revoke in flight finish, starts no other, and releases the lease at once", async () => {
    const world = await aWorld(3);
    const answers = new Map<string, ReturnType<typeof heldAnswer>>(world.profiles.map((profileId) => [profileId, heldAnswer()]));
    for (const [profileId, held] of answers) world.deel.answer(profileId, held);
    const runner = world.aRunner();
    const job = await runner.startJob(world.filters, "operator");
    expect(job).toMatchObject({ status: "RUNNING", total: 3 });
    await world.clock.advance(0);
    expect(world.deel.calls).toHaveLength(1);
    const inFlight = world.deel.calls[0]?.profileId as string;

    let stopped = false;
    const stopping = runner.stop().then(() => {
      stopped = true;
    });
    await world.clock.advance(0);
    expect(stopped).toBe(false);
    answers.get(inFlight)?.release();
    await world.clock.advance(0);
    await stopping;

    expect(world.deel.calls).toHaveLength(1);
    expect(await world.jobs.get(job.id)).toMatchObject({ status: "RUNNING", revoked: 1 });
    // Released: another runner claims it with no time passing.
    expect(await world.jobs.claim(job.id, "runner-2", LEASE_MS)).toBe(true);
  });
});

describe("what a job revokes when creates are under way", () => {
  it("waits for a create by its createdBy caller that was waiting on Deel when it began, and revokes what it minted before DONE", async () => {
    const world = await aWorld(1, { concurrency: 2 });
    const inFlight = randomUUID();
    const held = heldAnswer();
    world.deel.mint(inFlight, held);
    const creating = world.create(inFlight);
    await world.clock.advance(0);

    const runner = world.aRunner();
    const job = await runner.startJob(world.filters, "operator");
    expect(job.total).toBe(2);
    await world.clock.advance(100);
    // The revoke of the profile waits for the create's turn to end: the job is not DONE meanwhile.
    expect(await world.jobs.get(job.id)).toMatchObject({ status: "RUNNING" });
    expect(world.deel.callsFor(inFlight)).toHaveLength(0);

    held.release();
    await world.clock.advance(0);
    const answered = await creating;
    expect(answered.ok).toBe(true);
    await world.clock.advance(100);
    expect(await world.jobs.get(job.id)).toMatchObject({ status: "DONE", total: 2, revoked: 2, failed: 0 });
    expect(world.deel.live(inFlight)).toBe(false);
    expect(await world.ledger.get(inFlight)).toMatchObject({ createdBy: LEAKED, revokedBy: "operator" });
  });

  it("targets a create that passed the kill switch's check just before the job was recorded", async () => {
    const world = await aWorld(0);
    const racing = randomUUID();
    let openGuard: () => void = () => undefined;
    world.holdGuard(new Promise<void>((resolve) => (openGuard = resolve)));
    // The create reads "no job" and is held there; the job is recorded and lists its targets meanwhile.
    const creating = world.create(racing);
    await world.clock.advance(0);
    const runner = world.aRunner();
    const job = await runner.startJob(world.filters, "operator");
    world.holdGuard(Promise.resolve());
    openGuard();
    await world.clock.advance(0);
    await creating;
    await world.clock.advance(100);

    expect(await world.jobs.get(job.id)).toMatchObject({ status: "DONE", total: 1, revoked: 1 });
    expect(world.deel.live(racing)).toBe(false);
  });

  it("revokes its createdBy caller's lost mint (UNKNOWN: the answer never came, a token may exist)", async () => {
    const world = await aWorld(0);
    const lost = randomUUID();
    world.deel.mint(lost, new DeelError("unavailable", "the connection broke after the request left", { mayHaveMinted: true }));
    const answered = await world.create(lost);
    expect(answered.ok).toBe(false);
    await world.clock.advance(10_000);
    expect(world.deel.live(lost)).toBe(true);

    const runner = world.aRunner();
    const job = await runner.startJob(world.filters, "operator");
    expect(job.total).toBe(1);
    await world.clock.advance(100);
    expect(await world.jobs.get(job.id)).toMatchObject({ status: "DONE", revoked: 1 });
    expect(world.deel.live(lost)).toBe(false);
    expect(await world.ledger.getIntents([lost])).toEqual([null]);
  });

  it("with another caller's older intent standing on the profile, still targets the createdBy caller's mint there", async () => {
    const world = await aWorld(0);
    const shared = randomUUID();
    world.deel.mint(shared, new DeelError("unavailable", "lost", { mayHaveMinted: true }), new DeelError("unavailable", "lost", { mayHaveMinted: true }));
    expect((await world.create(shared, "svc-other")).ok).toBe(false);
    await world.clock.advance(1_000);
    expect((await world.create(shared, LEAKED)).ok).toBe(false);
    expect((await world.ledger.getIntents([shared]))[0]).toMatchObject({ createdBy: "svc-other" });

    const job = await world.aRunner().startJob(world.filters, "operator");
    expect(job.total).toBe(1);
    await world.clock.advance(100);
    expect(world.deel.live(shared)).toBe(false);
  });
});

describe("jobs running on the same profiles", () => {
  it("five concurrent jobs on the same ten profiles send one DELETE per profile, each job counting all ten revoked", async () => {
    const world = await aWorld(10, { concurrency: 5 });
    const runners = Array.from({ length: 5 }, () => world.aRunner());
    const filters: RevocationFilters = { createdBy: null, profileIds: world.profiles, onlyActive: true };
    const jobs = await Promise.all(runners.map((runner) => runner.startJob(filters, "operator")));
    await world.clock.advance(1_000);

    expect(world.deel.calls).toHaveLength(10);
    expect(new Set(world.deel.calls.map((call) => call.profileId)).size).toBe(10);
    for (const job of jobs) expect(await world.jobs.get(job.id)).toMatchObject({ status: "DONE", total: 10, revoked: 10, failed: 0 });
  });

  it("still revokes a profile again when a session was minted after the other job's revoke (an intent stands)", async () => {
    const world = await aWorld(1);
    const [profileId] = world.profiles as [string];
    const first = await world.aRunner().startJob(world.filters, "operator");
    await world.clock.advance(100);
    expect(await world.jobs.get(first.id)).toMatchObject({ status: "DONE" });
    // A mint whose answer was lost, after the revoke: a token may exist again.
    world.deel.mint(profileId, new DeelError("unavailable", "lost", { mayHaveMinted: true }));
    expect((await world.create(profileId)).ok).toBe(false);
    const second = await world.aRunner().startJob({ createdBy: null, profileIds: [profileId], onlyActive: true }, "operator");
    await world.clock.advance(100);
    expect(await world.jobs.get(second.id)).toMatchObject({ status: "DONE", revoked: 1 });
    expect(world.deel.callsFor(profileId)).toHaveLength(2);
    expect(world.deel.live(profileId)).toBe(false);
  });
});
