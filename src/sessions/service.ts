import type { Logger } from "pino";
import { isDeelError } from "../deel/errors.js";
import { deriveIdempotencyKey } from "../deel/idempotency.js";
import type { DeelApi } from "../deel/types.js";
import { classifyFailure } from "../errors.js";
import { writeAudit, type AuditAction } from "./audit.js";
import { ProfileQueue } from "./profile-queue.js";
import { SupersededSessionError } from "./errors.js";
import type { SessionRecord } from "./record.js";
import type { ProfileSerializer } from "./serializer.js";
import type { SessionStore } from "./store.js";

export interface ServiceDeps {
  deel: DeelApi;
  store: SessionStore;
  /** Per-profile ordering; an in-process queue unless replicas share one. */
  serializer?: ProfileSerializer;
  now?: () => Date;
}

/** Who acts, and the request it acts in. */
export interface Actor {
  sub: string;
  requestId: string;
  /** Request-scoped logger; the audit line goes here. */
  log: Logger;
}

export interface CreatedSession {
  /** The worker access token: handed to the caller once, never stored or logged. */
  token: string;
  session: SessionRecord;
}

export interface RevokedSession {
  profileId: string;
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
  private readonly now: () => Date;
  private readonly queue: ProfileSerializer;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(deps: ServiceDeps) {
    this.deel = deps.deel;
    this.store = deps.store;
    this.now = deps.now ?? (() => new Date());
    this.queue = deps.serializer ?? new ProfileQueue();
  }

  /**
   * Mints a token at Deel and records the session. With a caller key, the Idempotency-Key sent to
   * Deel is derived from (sub, profile, key), so the same caller repeating itself within 24 h gets
   * Deel's replay of the same token, and two callers never share a key.
   */
  async create(actor: Actor, profileId: string, callerKey: string | undefined): Promise<CreatedSession> {
    const idempotencyKey = deriveIdempotencyKey(actor.sub, profileId, callerKey);
    // The Deel deadline counts from here, so time queued behind the same profile is part of it.
    const startedAt = Date.now();
    return this.audited(actor, "create", profileId, () =>
      this.queue.run(profileId, async () => {
        const minted = await this.deel.createSession(profileId, idempotencyKey, { requestId: actor.requestId, startedAt });
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
          const existing = await this.store.get(profileId);
          if (existing !== null && existing.expiresAt.getTime() === minted.expiresAt.getTime()) {
            // The ledger's own session: answer with it as recorded (REVOKED if it was revoked since).
            return { result: { token: minted.token, session: existing }, deelRequestId: minted.deelRequestId };
          }
          if (existing !== null && existing.expiresAt.getTime() > minted.expiresAt.getTime()) {
            // A newer session replaced the replayed one at Deel: its token is dead. Never hand it out.
            throw new SupersededSessionError();
          }
        }
        await this.store.put(fresh);
        return { result: { token: minted.token, session: fresh }, deelRequestId: minted.deelRequestId };
      }),
    );
  }

  /** Revokes the worker's token at Deel, then marks the ledger's record REVOKED. */
  async revoke(actor: Actor, profileId: string): Promise<RevokedSession> {
    const startedAt = Date.now();
    return this.audited(actor, "revoke", profileId, () =>
      this.queue.run(profileId, async () => {
        const revoked = await this.deel.revokeSession(profileId, { requestId: actor.requestId, startedAt });
        const revokedAt = this.now();
        const session = await this.store.markRevoked(profileId, revokedAt, actor.sub);
        return { result: { profileId, revokedAt, session }, deelRequestId: revoked.deelRequestId };
      }),
    );
  }

  getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>> {
    return this.store.getMany(profileIds);
  }

  /**
   * Resolves once every create and revoke under way has finished (each is bounded by the Deel
   * deadline). Shutdown waits for this before closing the ledger, so a token Deel minted is always
   * recorded, even when the HTTP drain gave up on the request.
   */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Runs one create or revoke, writes its audit line whatever the outcome, and keeps it in
   * `inFlight` until it settles (for `settle()`).
   */
  private audited<T>(
    actor: Actor,
    action: AuditAction,
    profileId: string,
    work: () => Promise<{ result: T; deelRequestId: string | undefined }>,
  ): Promise<T> {
    const entry = { action, sub: actor.sub, profileId, requestId: actor.requestId };
    const operation = work().then(
      ({ result, deelRequestId }) => {
        writeAudit(actor.log, { ...entry, outcome: "OK", deelRequestId });
        return result;
      },
      (error: unknown) => {
        const outcome = classifyFailure(error)?.code ?? "INTERNAL_SERVER_ERROR";
        writeAudit(actor.log, { ...entry, outcome, deelRequestId: isDeelError(error) ? error.deelRequestId : undefined });
        throw error;
      },
    );
    this.inFlight.add(operation);
    const forget = () => this.inFlight.delete(operation);
    void operation.then(forget, forget);
    return operation;
  }
}
