import DataLoader from "dataloader";
import type { Logger } from "pino";
import type { Authentication } from "../auth/caller.js";
import type { ProfileId } from "../base/profile-id.js";
import type { CallerQuota } from "../auth/caller-quota.js";
import type { CallerVerifier } from "../auth/verifier.js";
import type { ScopedRequest } from "../http/server.js";
import type { RevocationRunner } from "../sessions/jobs/runner.js";
import type { HistoryPage, HistoryPageRequest } from "../sessions/history.js";
import type { WorkerSessionService } from "../sessions/service.js";
import { toSessionView, type SessionView } from "./session-view.js";

/** Per-request state, made by one factory for every GraphQL request. */
export interface GatewayContext {
  readonly requestId: string;
  readonly log: Logger;
  /** Who is calling: a verified caller, or why there is none. */
  readonly auth: Authentication;
  readonly sessions: WorkerSessionService;
  /** Per-caller mutation quota (shared by every request of this process). */
  readonly quota: CallerQuota;
  /** Origins a magic link's onSuccessRedirectUrl may point at (MAGIC_LINK_REDIRECT_ORIGINS); absent or empty refuses every one. */
  readonly magicLinkRedirectOrigins?: readonly string[];
  /** Revocation jobs (the kill switch); absent where a test builds a context without them. */
  readonly revocations?: RevocationRunner;
  readonly loaders: {
    /** Ledger records by profile id: one store read per tick, cached for this request only. */
    readonly session: DataLoader<ProfileId, SessionView | null>;
    /** History pages: every page asked in one tick (an `_entities` fetch of many workers) is one store read. */
    readonly history: DataLoader<HistoryPageRequest, HistoryPage, string>;
  };
}

export interface ContextDeps {
  verifier: CallerVerifier;
  sessions: WorkerSessionService;
  quota: CallerQuota;
  magicLinkRedirectOrigins?: readonly string[];
  revocations?: RevocationRunner;
}

/** Largest batch of profile ids read from the ledger at once. */
const MAX_BATCH = 500;

/**
 * The one context factory: verifies the caller and gives each request fresh loaders, so that a
 * loader's cache never crosses callers.
 */
export function createContextFactory(deps: ContextDeps): (req: ScopedRequest) => Promise<GatewayContext> {
  const { verifier, sessions, quota } = deps;
  const magicLinkRedirectOrigins = Object.freeze([...(deps.magicLinkRedirectOrigins ?? [])]);
  return async (req) => {
    const auth = await verifier.authenticate(req.headers.authorization, (error) =>
      req.log.error({ err: error }, "caller verification failed unexpectedly"),
    );
    const context = {
      requestId: req.requestId,
      auth,
      sessions,
      quota,
      magicLinkRedirectOrigins,
      ...(deps.revocations === undefined ? {} : { revocations: deps.revocations }),
      loaders: {
        session: new DataLoader<ProfileId, SessionView | null>(
          async (ids) => (await sessions.read(ids)).map((entry) => (entry === null ? null : toSessionView(entry.record, entry.status))),
          { maxBatchSize: MAX_BATCH },
        ),
        history: new DataLoader<HistoryPageRequest, HistoryPage, string>((requests) => sessions.history(requests), {
          maxBatchSize: MAX_BATCH,
          cacheKeyFn: (request) => JSON.stringify([request.subject.kind, request.subject.id, request.first, request.after ?? null]),
        }),
      },
    };
    // `log` lives on the context's prototype: Apollo copies each operation's context with
    // Object.assign, which would call an own getter (and make the logger) on every request.
    return Object.assign(Object.create({ get log() { return req.log; } }) as object, context) as GatewayContext;
  };
}
