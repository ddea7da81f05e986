import DataLoader from "dataloader";
import type { Logger } from "pino";
import type { Caller } from "../auth/caller.js";
import type { CallerQuota } from "../auth/caller-quota.js";
import type { AuthError } from "../auth/verifier.js";
import type { WorkerSessionService } from "../sessions/service.js";
import { toSessionView, type SessionView } from "./session-view.js";

/** Per-request state, made by one factory for every GraphQL request. */
export interface GatewayContext {
  requestId: string;
  log: Logger;
  /** The verified caller, or null when the request carried no valid token. */
  caller: Caller | null;
  /** Why the caller could not be verified, when it could not. */
  authError: AuthError | null;
  sessions: WorkerSessionService;
  /** Per-caller mutation quota (shared by every request of this process). */
  quota: CallerQuota;
  loaders: {
    /** Ledger records by profile id: one store read per tick, cached for this request only. */
    session: DataLoader<string, SessionView | null>;
  };
}

export interface ContextInput {
  requestId: string;
  /** The request's logger, made on first use (most requests never log). */
  log: () => Logger;
  caller: Caller | null;
  authError: AuthError | null;
  sessions: WorkerSessionService;
  quota: CallerQuota;
}

/** Builds a request's context. Loaders are fresh per request so their cache never crosses callers. */
export function createContext(input: ContextInput): GatewayContext {
  const { sessions, log, ...rest } = input;
  const context = {
    ...rest,
    sessions,
    loaders: {
      session: new DataLoader<string, SessionView | null>(
        async (ids) => {
          const now = new Date();
          return (await sessions.getMany(ids)).map((record) => (record === null ? null : toSessionView(record, now)));
        },
        { maxBatchSize: 500 },
      ),
    },
  };
  // `log` lives on the context's prototype: Apollo copies each operation's context with
  // Object.assign, which would call an own getter (and make the logger) on every request.
  return Object.assign(Object.create({ get log() { return log(); } }) as object, context) as GatewayContext;
}
