import DataLoader from "dataloader";
import type { Logger } from "pino";
import type { Caller } from "../auth/caller.js";
import type { CallerQuota } from "../auth/caller-quota.js";
import type { AuthError } from "../auth/verifier.js";
import type { SessionRecord } from "../sessions/record.js";
import type { WorkerSessionService } from "../sessions/service.js";

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
    session: DataLoader<string, SessionRecord | null>;
  };
}

export interface ContextInput {
  requestId: string;
  log: Logger;
  caller: Caller | null;
  authError: AuthError | null;
  sessions: WorkerSessionService;
  quota: CallerQuota;
}

/** Builds a request's context. Loaders are fresh per request so their cache never crosses callers. */
export function createContext(input: ContextInput): GatewayContext {
  const { sessions } = input;
  return {
    ...input,
    loaders: {
      session: new DataLoader<string, SessionRecord | null>((ids) => sessions.getMany(ids), { maxBatchSize: 500 }),
    },
  };
}
