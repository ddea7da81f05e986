import type { Logger } from "pino";
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import { isDeelError } from "../deel/errors.js";
import type { IdempotencyKey } from "../base/idempotency-key.js";
import type { ProfileId } from "../base/profile-id.js";
import type { MagicLinkTarget } from "../base/redirects.js";
import { deriveIdempotencyKey } from "../deel/idempotency.js";
import type { CallOptions, DeelApi, MintedSession } from "../deel/types.js";
import { ProfileQueue } from "./profile-queue.js";
import { EndedSessionError, isLedgerError, LedgerError, SupersededSessionError } from "./errors.js";
import type { Fence } from "./fencing.js";
import { stampNote, type HistoryAction, type HistoryNote, type HistoryPage, type HistoryPageRequest } from "./history.js";
import { entryAt, intentMayBeLive, type LedgerEntry, type MintIntent } from "./intent.js";
import { PENDING_RETRY_MS, PendingWrites, writeRevoke, type PendingWrite } from "./pending-writes.js";
import { statusOf, type SessionRecord, type SessionStatus } from "./record.js";
import type { ProfileLock } from "./profile-lock.js";
import type { SessionStore } from "./store.js";

/** The service's operations, as its outcome reports name them. */
export type SessionAction = "create" | "revoke" | "magic_link";

/**
 * How one create, revoke or magic link ended: reported once per operation, refused or not, to the
 * sink the app wires to the audit writer. `error` is absent on success; it is the thrown error as
 * is (the sink decides what a caller-facing code is, this layer never does).
 */
export interface SessionOutcome {
  action: SessionAction;
  actor: Actor;
  profileId: ProfileId;
  deelRequestId: string | undefined;
  error?: unknown;
}

export interface ServiceDeps {
  deel: DeelApi;
  /** Receives every operation's outcome (the audit line). */
  report?: (outcome: SessionOutcome) => void;
  store: SessionStore;
  /** Per-profile ordering; an in-process queue unless replicas share one. */
  lock?: ProfileLock;
  /** Every timestamp and deadline of the service. Default: the system clock. */
  clock?: Clock;
  /**
   * How old an unresolved mint intent must be before reads answer UNKNOWN: past this, no create
   * can still be waiting on Deel (`intentStaleAfterMs(DEEL_TIMEOUT_MS)`, see intent.ts).
   */
  intentStaleAfterMs: number;
  /**
   * The one deadline of every create, revoke, magic link and read, counted from its start
   * (`DEEL_TIMEOUT_MS`): the wait for the profile's turn, the store and Deel all fit in it, and the
   * caller is answered by then whatever is still under way. Default: none (tests).
   */
  timeoutMs?: number;
  /**
   * Asked before every mint, inside the profile's turn and before any Deel call: throws (a
   * RevocationInProgressError) while a revocation job refuses creates for the profile or the caller.
   */
  createGuard?: (profileId: string, sub: string) => Promise<void>;
  /**
   * The code a refusal is recorded with in the session history (the caller-facing code, which this
   * layer never decides: the app passes the GraphQL layer's classifier). Default: the error's name.
   */
  outcomeCode?: (error: unknown) => string;
}

/** A revoke's event: JOB_REVOKE for a revocation job's actor, REVOKE otherwise. */
function revokeAction(actor: Actor): HistoryAction {
  return actor.jobId === undefined ? "REVOKE" : "JOB_REVOKE";
}

/** The event of each operation (what a refusal of it is recorded as). */
const OPERATION_EVENTS: Record<SessionAction, (actor: Actor) => HistoryAction> = {
  create: () => "MINT",
  magic_link: () => "MAGIC_LINK",
  revoke: revokeAction,
};

/** What a ledger write of `actor`'s operation records in the history. */
function historyNote(actor: Actor, action: HistoryAction, deelRequestId?: string): HistoryNote {
  return { actor: actor.sub, requestId: actor.requestId, action, jobId: actor.jobId, deelRequestId };
}

/**
 * Deel failures after which this create minted no token: no attempt reached Deel, or every one that
 * did was refused (see `DeelError.mayHaveMinted`: the OR over all attempts, never just the last).
 */
function mintedNothing(error: unknown): boolean {
  return isDeelError(error) && !error.mayHaveMinted;
}

/** Who acts, and the request it acts in. */
export interface Actor {
  sub: string;
  requestId: string;
  /** Request-scoped logger; the audit line goes here. */
  log: Logger;
  /** The revocation job this actor revokes for, if any (its revokes are JOB_REVOKE in the history). */
  jobId?: string;
}

export interface CreatedSession {
  /** The worker access token: handed to the caller once, never stored or logged. */
  token: string;
  session: SessionRecord;
}

/** What a magic link is made for: where it leads (checked at the edge), and the mint's idempotency key. */
export interface MagicLinkOptions {
  target: MagicLinkTarget;
  idempotencyKey: IdempotencyKey | undefined;
}

/** A magic link and the session whose token it was made from. The token itself is not here. */
export interface CreatedMagicLink {
  /** Signs the worker in: handed to the caller once, never stored or logged. */
  magicLink: string;
  expiresAt: Date;
  session: SessionRecord;
}

/** How one revoke goes: the Deel call's attempts, and whether a revoke since a time already did it. */
export interface RevokeOptions extends Pick<CallOptions, "maxAttempts"> {
  /** A record revoked at or after this time (no intent standing) is answered without a Deel call. */
  unlessRevokedSince?: Date;
}

export interface RevokedSession {
  profileId: ProfileId;
  revokedAt: Date;
  /** The ledger's record after the revoke, or null when it knew no session for the profile. */
  session: SessionRecord | null;
}

/**
 * The ledger's rules around Deel's two calls. It orders creates and revokes per profile, records a
 * minted session before the mutation answers, and writes one audit line per attempt.
 * It never sees GraphQL.
 */
export class WorkerSessionService {
  private readonly deel: DeelApi;
  private readonly store: SessionStore;
  private readonly clock: Clock;
  private readonly queue: ProfileLock;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly intentStaleAfterMs: number;
  private readonly createGuard: ((profileId: string, sub: string) => Promise<void>) | undefined;
  private readonly report: (outcome: SessionOutcome) => void;
  private readonly outcomeCode: (error: unknown) => string;
  private readonly timeoutMs: number | undefined;
  /** Ledger writes the store could not take, retried when it answers (pending-writes.ts). */
  private readonly pending = new PendingWrites();
  private retryTimer: NodeJS.Timeout | undefined;
  /** The refusals `withinDeadline` made (a caller answered at the deadline while the work goes on). */
  private readonly deadlineRefusals = new WeakSet<object>();

  constructor(deps: ServiceDeps) {
    this.outcomeCode = deps.outcomeCode ?? ((error) => (error instanceof Error ? error.name : "INTERNAL_SERVER_ERROR"));
    this.timeoutMs = deps.timeoutMs;
    this.intentStaleAfterMs = deps.intentStaleAfterMs;
    this.createGuard = deps.createGuard;
    this.report = deps.report ?? (() => undefined);
    this.deel = deps.deel;
    this.store = deps.store;
    this.clock = deps.clock ?? systemClock;
    this.queue = deps.lock ?? new ProfileQueue(this.clock);
  }

  /** Ledger writes kept while the store was away, not yet written (readiness reports it). */
  get pendingWrites(): number {
    return this.pending.size;
  }

  /**
   * Mints a token at Deel and records the session. With a caller key, the Idempotency-Key sent to
   * Deel is derived from (sub, profile, key), so the same caller repeating itself within 24 h gets
   * Deel's replay of the same token, and two callers never share a key.
   */
  async create(actor: Actor, profileId: ProfileId, callerKey: IdempotencyKey | undefined): Promise<CreatedSession> {
    const idempotencyKey = deriveIdempotencyKey(actor.sub, profileId, callerKey);
    // The Deel deadline counts from here, so time queued behind the same profile is part of it.
    const startedAt = this.clock.now();
    const deadline = this.deadlineFrom(startedAt);
    return this.audited(actor, "create", profileId, deadline, () =>
      this.turn(profileId, deadline, (fence) => this.mintAndRecord(actor, profileId, idempotencyKey, startedAt, fence)),
    );
  }

  /**
   * Mints (or, with the same key, replays) a worker token exactly as `create` does, then asks Deel
   * for a magic link made from it, and answers with the link only: the worker token never leaves
   * this method, and neither it nor the link is logged. Both Deel calls share one deadline, counted
   * from here, and run in the profile's turn, so no revoke or create on the same worker slips
   * between the mint and the link. A replayed session that was revoked or has expired is refused
   * before Deel is asked for a link (its token could not sign the worker in). The target was checked
   * at the edge, so nothing here can refuse it after a token was minted for it.
   * One audit line, `magic_link`.
   */
  async magicLink(actor: Actor, profileId: ProfileId, options: MagicLinkOptions): Promise<CreatedMagicLink> {
    const idempotencyKey = deriveIdempotencyKey(actor.sub, profileId, options.idempotencyKey);
    const startedAt = this.clock.now();
    const request = options.target;
    const deadline = this.deadlineFrom(startedAt);
    return this.audited(actor, "magic_link", profileId, deadline, () =>
      this.turn(profileId, deadline, async (fence) => {
        const { deel } = this;
        if (deel.createMagicLink === undefined) throw new TypeError("the Deel API in use cannot create magic links");
        const minted = await this.mintAndRecord(actor, profileId, idempotencyKey, startedAt, fence);
        const { session } = minted.result;
        if (session.revokedAt !== null || session.expiresAt.getTime() <= this.now().getTime()) throw new EndedSessionError();
        const link = await deel.createMagicLink(minted.result.token, request, { requestId: actor.requestId, startedAt });
        return {
          result: { magicLink: link.url, expiresAt: link.expiresAt, session },
          deelRequestId: link.deelRequestId ?? minted.deelRequestId,
        };
      }),
    );
  }

  /**
   * The create path, run under the profile's turn: intent, Deel's mint (or replay), the replay
   * rules, the ledger record. Shared by `create` and `magicLink`, so both mint the same way.
   */
  private async mintAndRecord(
    actor: Actor,
    profileId: ProfileId,
    idempotencyKey: string,
    startedAt: number,
    fence: Fence,
  ): Promise<{ result: CreatedSession; deelRequestId: string | undefined }> {
    // The intent is in the ledger before Deel is asked, so that a token whose answer is lost
    // (the process dies, the answer never arrives) is known to exist, as UNKNOWN.
    // An older unresolved intent stays in place of this one (see intent.ts): a lost mint stays
    // UNKNOWN whatever later creates that mint nothing (refused, replayed) do.
    const intent: MintIntent = { profileId, createdBy: actor.sub, startedAt: this.now() };
    const resolvedNote = historyNote(actor, "INTENT_RESOLVED");
    let own: boolean;
    try {
      own = await this.store.beginMint(intent, fence, historyNote(actor, "INTENT_WRITTEN"));
    } catch (error) {
      // The write may have landed unseen (the store went away with its answer): cleared later if so.
      // A fenced or outraced write surely wrote nothing.
      if (!isLedgerError(error) || error.kind === "unavailable") this.keep(intent.profileId, { kind: "clear", intent, resolvedNote: this.stamped(resolvedNote) });
      throw error;
    }
    // This mint minted nothing new (Deel refused, or replayed an earlier answer): it resolves its own
    // intent, never an older one, which still stands for a token this answer says nothing about.
    const resolved = () => (own ? this.endMint(actor, intent, fence, { kind: "clear", intent, resolvedNote }) : Promise.resolve());
    // A running revocation job refuses creates for its profiles (and by its createdBy caller). Asked
    // after the intent is written, never before: a job recorded before this check refuses the create,
    // and a job recorded after it lists the intent among its targets, whose revoke waits for this
    // profile's turn (the end of this mint). Checked before, a job could begin and list its targets
    // between the check and the mint, and miss it.
    try {
      await this.createGuard?.(profileId, actor.sub);
    } catch (error) {
      await resolved();
      throw error;
    }
    // This mint's fresh token is recorded: Deel replaced every older token with it, so every intent
    // begun at or before this one is resolved.
    // (Kept, the record is written again without a note: its MINT event is already in the history.)
    const replacedOlder = (record: SessionRecord) =>
      this.endMint(actor, intent, fence, { kind: "record", intent, record, replayed: false, resolvedNote });
    let minted: MintedSession;
    try {
      minted = await this.deel.createSession(profileId, idempotencyKey, { requestId: actor.requestId, startedAt });
    } catch (error) {
      if (mintedNothing(error)) await resolved();
      throw error;
    }
    const fresh: SessionRecord = {
      profileId,
      createdAt: this.now(),
      expiresAt: minted.expiresAt,
      revokedAt: null,
      createdBy: actor.sub,
      revokedBy: null,
    };
    if (minted.replayed) {
      // Deel replayed an earlier answer: the session it names may already be in the ledger, and
      // may since have been revoked or replaced. Never let a replay overwrite newer state.
      // A replay that expires *later* than the ledger's session was minted after it: typically
      // this call's own first attempt, whose answer was lost before a retry with the same key
      // (this runs under the profile's lock). That one is Deel's current token: record it.
      let existing: SessionRecord | null;
      try {
        existing = await this.store.get(profileId);
      } catch (error) {
        if (own) this.keep(profileId, { kind: "clear", intent, resolvedNote: this.stamped(resolvedNote) });
        throw error;
      }
      if (existing !== null && existing.expiresAt.getTime() === minted.expiresAt.getTime()) {
        // The ledger's own session: answer with it as recorded (REVOKED if it was revoked since).
        await resolved();
        await this.noteEvent(actor, profileId, "REPLAY", minted.deelRequestId);
        return { result: { token: minted.token, session: existing }, deelRequestId: minted.deelRequestId };
      }
      if (existing !== null && existing.expiresAt.getTime() > minted.expiresAt.getTime()) {
        // A newer session replaced the replayed one at Deel: its token is dead. Never hand it out.
        await resolved();
        throw new SupersededSessionError();
      }
    }
    // Dated and placed now: written again later (kept, or landed unseen), it stays one event of this time.
    const note = this.stamped(historyNote(actor, minted.replayed ? "REPLAY" : "MINT", minted.deelRequestId));
    try {
      await this.store.put(fresh, fence, note);
    } catch (error) {
      // Deel holds this session: the ledger records it once the store answers again.
      this.keep(profileId, { kind: "record", intent, record: fresh, replayed: minted.replayed, note, resolvedNote: this.stamped(resolvedNote) });
      throw error;
    }
    // A replay recorded here (typically this call's own first attempt) says nothing of a token an
    // older intent stands for: only a token Deel minted for this call replaced it.
    await (minted.replayed ? resolved() : replacedOlder(fresh));
    return { result: { token: minted.token, session: fresh }, deelRequestId: minted.deelRequestId };
  }

  /**
   * Revokes the worker's token at Deel, then marks the ledger's record REVOKED. An unresolved mint
   * intent is resolved too: the token it may stand for is dead now, so the ledger records that
   * session (as the intent describes it) as REVOKED. `options.maxAttempts` bounds the Deel call's own
   * retries (a revocation job passes 1: it retries on its own schedule).
   *
   * With `options.unlessRevokedSince` (a revocation job passes its start), a profile whose record was
   * revoked at or after that time, with no unresolved intent, is answered as it stands without a
   * Deel call: decided in the profile's turn, so a revoke by another job (or anyone) that was in
   * flight has landed, and no mint can have followed it (a mint in flight would hold the turn, a
   * later one leaves a fresh record or an intent).
   */
  async revoke(actor: Actor, profileId: ProfileId, options: RevokeOptions = {}): Promise<RevokedSession> {
    const startedAt = this.clock.now();
    const { unlessRevokedSince, ...deel } = options;
    const deadline = this.deadlineFrom(startedAt);
    return this.audited(actor, "revoke", profileId, deadline, () =>
      this.turn(profileId, deadline, async (fence) => {
        const [state] = await this.store.getStates([profileId]);
        const intent = state?.intent ?? null;
        const record = state?.record ?? null;
        if (unlessRevokedSince !== undefined && record?.revokedAt != null && record.revokedAt.getTime() >= unlessRevokedSince.getTime()) {
          if (intent === null || !intentMayBeLive(intent, this.now())) {
            return { result: { profileId, revokedAt: record.revokedAt, session: record }, deelRequestId: undefined };
          }
        }
        const revoked = await this.deel.revokeSession(profileId, { ...deel, requestId: actor.requestId, startedAt });
        const revokedAt = this.now();
        // Dated and placed now (the revoke's event, then its intent's): a kept write replays them as they are.
        const note = this.stamped(historyNote(actor, revokeAction(actor), revoked.deelRequestId));
        const resolvedNote = this.stamped(historyNote(actor, "INTENT_RESOLVED", revoked.deelRequestId));
        const seen = { record, intent };
        let session: SessionRecord | null;
        try {
          session = await writeRevoke(this.store, profileId, seen, { revokedAt, revokedBy: actor.sub, note, resolvedNote }, fence);
        } catch (error) {
          // Deel revoked the token: the ledger records it once the store answers again.
          this.keep(profileId, { kind: "revoke", seen, revokedAt, revokedBy: actor.sub, note, resolvedNote });
          throw error;
        }
        return { result: { profileId, revokedAt, session }, deelRequestId: revoked.deelRequestId };
      }),
    );
  }

  /**
   * What reads show for each profile, in order: the ledger's record with its status, UNKNOWN for a
   * mint whose answer was lost, or null. One read of records and intents together.
   */
  async read(profileIds: readonly string[]): Promise<Array<LedgerEntry | null>> {
    const states = await this.withinDeadline(this.store.getStates(profileIds), this.deadlineFrom(this.clock.now()));
    const now = this.now();
    return states.map((state) => entryAt(state.record, state.intent, now, this.intentStaleAfterMs));
  }

  /**
   * Pages of the session history (history.ts), one per request, in one store read whatever their
   * number; answered by the deadline (`timeoutMs`, as every read), past it a LedgerError `unavailable`.
   */
  history(requests: readonly HistoryPageRequest[]): Promise<HistoryPage[]> {
    return this.withinDeadline(this.store.readHistory(requests), this.deadlineFrom(this.clock.now()));
  }

  /** A record's status now, by the service's clock (the record a create, link or revoke answers with). */
  statusNow(record: SessionRecord): Exclude<SessionStatus, "UNKNOWN"> {
    return statusOf(record, this.now());
  }

  private now(): Date {
    return new Date(this.clock.now());
  }

  /** The note dated now with its own position (history.ts `stampNote`). */
  private stamped(note: HistoryNote): HistoryNote {
    return stampNote(note, this.clock.now());
  }

  /**
   * Resolves a mint's intent. A ledger that fails here keeps `otherwise` to write when the store
   * answers again (the session just recorded, or Deel's answer, is not lost): logged, not thrown.
   */
  private async endMint(actor: Actor, intent: MintIntent, fence: Fence, otherwise: Exclude<PendingWrite, { kind: "revoke" }>): Promise<void> {
    // Dated and placed now: the same event whether it is written here or kept and written later.
    const resolvedNote = this.stamped(otherwise.resolvedNote);
    try {
      await this.store.endMint(intent.profileId, fence, intent.startedAt, resolvedNote);
    } catch (error) {
      this.keep(intent.profileId, { ...otherwise, resolvedNote });
      actor.log.warn({ err: error, profileId: intent.profileId }, "could not clear a mint intent; it is cleared once the ledger answers again");
    }
  }

  /** The profile's turn, bounded by `deadline`; writes kept for the profile go first. */
  private turn<T>(profileId: ProfileId, deadline: number | undefined, task: (fence: Fence) => Promise<T>): Promise<T> {
    return this.queue.run(
      profileId,
      async (fence) => {
        await this.pending.flush(this.store, profileId, fence);
        return task(fence);
      },
      deadline,
    );
  }

  /** Keeps a write the store could not take, and makes sure it is tried again. */
  private keep(profileId: string, write: PendingWrite): void {
    this.pending.keep(profileId, write);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      void this.retryPending().finally(() => {
        this.retryTimer = undefined;
        if (this.pending.size > 0) this.scheduleRetry();
      });
    }, PENDING_RETRY_MS);
    // Kept writes alone never hold the process open (shutdown tries them once, in `settle`).
    this.retryTimer.unref();
  }

  /** Tries every kept write once, each profile in its turn; those the store still refuses stay. */
  private async retryPending(): Promise<void> {
    // Each in its turn, however long that takes: passes never overlap (see `scheduleRetry`).
    await Promise.allSettled(this.pending.profiles().map((id) => this.queue.run(id, (fence) => this.pending.flush(this.store, id, fence))));
  }

  private deadlineFrom(startedAt: number): number | undefined {
    return this.timeoutMs === undefined ? undefined : startedAt + this.timeoutMs;
  }

  /**
   * The answer by `deadline`: what `work` gave, or, past it, a LedgerError `unavailable` while the
   * work goes on (bounded by its own timeouts; a write it could not make is kept, see `keep`).
   */
  private withinDeadline<T>(work: Promise<T>, deadline: number | undefined): Promise<T> {
    if (deadline === undefined) return work;
    const ended = new AbortController();
    const late = sleepUntil(this.clock, deadline, ended.signal).then(() => {
      const refusal = new LedgerError("unavailable", `The operation did not finish within its ${this.timeoutMs} ms deadline (the session store or the profile's turn was slow)`);
      this.deadlineRefusals.add(refusal);
      throw refusal;
    });
    return Promise.race([work, late]).finally(() => ended.abort());
  }

  /**
   * Appends one history event no ledger write records (a refusal, a magic link made, a replay of a
   * recorded session). A ledger that fails here loses the event, not the operation: logged, not thrown.
   */
  private async noteEvent(actor: Actor, profileId: ProfileId, action: HistoryAction, deelRequestId: string | undefined, outcome = "OK"): Promise<void> {
    try {
      await this.store.appendHistory([
        { profileId, action, outcome, actor: actor.sub, requestId: actor.requestId, deelRequestId: deelRequestId ?? null, jobId: actor.jobId ?? null, at: this.clock.now() },
      ]);
    } catch (error) {
      actor.log.warn({ err: error, profileId, action }, "could not append a session history event");
    }
  }

  /**
   * Resolves once every create, revoke and magic link under way has finished (each is bounded by
   * the Deel deadline), with its history event (one whose caller was answered at the deadline is
   * recorded when its work ends), and the kept writes were tried once more. Shutdown waits for this
   * before closing the ledger, so a token Deel minted is always recorded, even when the HTTP drain
   * gave up on the request; a test waits for it to read every late event.
   */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (this.pending.size > 0) await this.retryPending();
  }

  /**
   * Runs one create, revoke or magic link, reports its outcome whatever it is (the audit line, when
   * the caller is answered), and keeps it in `inFlight` until it and its history event are done (for
   * `settle()`).
   *
   * A caller answered at the deadline while the work goes on is refused, but the history records
   * what the work then did: a create or revoke that succeeds later is recorded by its ledger writes
   * alone (MINT, REVOKE … OK), so the refusal is recorded only once the work has ended without
   * success; a magic link finished late never reached its caller, so it is recorded as MAGIC_LINK
   * with the caller's code, once it has ended.
   */
  private audited<T>(
    actor: Actor,
    action: SessionAction,
    profileId: ProfileId,
    deadline: number | undefined,
    work: () => Promise<{ result: T; deelRequestId: string | undefined }>,
  ): Promise<T> {
    type Ended = { ok: true; value: { result: T; deelRequestId: string | undefined } } | { ok: false; error: unknown };
    const running = work();
    const ended: Promise<Ended> = running.then(
      (value) => ({ ok: true, value }),
      (error: unknown) => ({ ok: false, error }),
    );
    // What the caller is told: the work's end, or the deadline's refusal while it goes on.
    const answer: Promise<{ ended: Ended } | { late: unknown }> = this.withinDeadline(running, deadline).then(
      (value) => ({ ended: { ok: true, value } }),
      (error: unknown) => (this.deadlineRefusals.has(error as object) ? { late: error } : { ended: { ok: false, error } }),
    );
    const done = ended.then(async (settled) => {
      const told = await answer;
      if ("late" in told) await this.noteLate(actor, action, profileId, settled, told.late);
    });
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    // The answer waits for its history event no longer than the deadline (it goes on, in the background).
    const noted = (event: Promise<void>) => this.withinDeadline(event, deadline).catch(() => undefined);
    return answer.then(async (told) => {
      if ("late" in told) {
        this.report({ action, actor, profileId, deelRequestId: isDeelError(told.late) ? told.late.deelRequestId : undefined, error: told.late });
        throw told.late;
      }
      const settled = told.ended;
      if (settled.ok) {
        const { result, deelRequestId } = settled.value;
        this.report({ action, actor, profileId, deelRequestId });
        // A magic link is the one success no ledger write records: its event is appended here.
        if (action === "magic_link") await noted(this.noteEvent(actor, profileId, "MAGIC_LINK", deelRequestId));
        return result;
      }
      const { error } = settled;
      const deelRequestId = isDeelError(error) ? error.deelRequestId : undefined;
      this.report({ action, actor, profileId, deelRequestId, error });
      // Every refusal that reached the service goes into the history, with the caller-facing code.
      await noted(this.noteEvent(actor, profileId, OPERATION_EVENTS[action](actor), deelRequestId, this.outcomeCode(error)));
      throw error;
    });
  }

  /**
   * The history event of an operation whose caller was refused at the deadline (`late`), once its
   * work has ended: none for a create or revoke that succeeded (its ledger writes recorded it), the
   * refusal otherwise, with the caller's code and Deel's request id when there was one.
   */
  private async noteLate(
    actor: Actor,
    action: SessionAction,
    profileId: ProfileId,
    settled: { ok: true; value: { deelRequestId: string | undefined } } | { ok: false; error: unknown },
    late: unknown,
  ): Promise<void> {
    if (settled.ok && action !== "magic_link") return;
    const deelRequestId = settled.ok ? settled.value.deelRequestId : isDeelError(settled.error) ? settled.error.deelRequestId : undefined;
    await this.noteEvent(actor, profileId, OPERATION_EVENTS[action](actor), deelRequestId, this.outcomeCode(late));
  }
}
