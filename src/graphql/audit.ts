import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import type { SessionAction, SessionOutcome } from "../sessions/service.js";
import { classifyFailure, type ErrorCode } from "./failures.js";

/**
 * The one audit writer. Every audit line of the gateway goes through here, so they share one
 * shape: `{ audit: { action, sub, profileId, outcome, deelRequestId, requestId } }` at `info`.
 * Three sources feed it:
 *  - the edge pipeline (edge.ts), for a mutation refused before it reached its resolver
 *    (unauthenticated, invalid input, not allowed, over the caller quota);
 *  - WorkerSessionService's `report` (wired in app.ts), for how a create, revoke or magic link ended;
 *  - the edge pipeline again, for how a mutation the service does not report ended (a job start).
 */

/** The mutations that leave an audit line: the service's own operations, and the start of a revocation job. */
export type AuditAction = SessionAction | "revoke_job";

/**
 * The one map from Mutation field to audit action. Building the schema fails at start-up when a
 * Mutation field has no entry here ({@link assertEveryMutationAudited}).
 */
export const MUTATION_AUDIT_ACTIONS: Readonly<Record<string, AuditAction>> = Object.freeze({
  createWorkerSession: "create",
  revokeWorkerSession: "revoke",
  createWorkerMagicLink: "magic_link",
  revokeWorkerSessions: "revoke_job",
});

/** The actions whose outcome WorkerSessionService reports; the edge writes the outcome of the others. */
const SERVICE_ACTIONS: ReadonlySet<AuditAction> = new Set<SessionAction>(["create", "revoke", "magic_link"]);

/** The audit action of a Mutation field (the schema was checked at start-up: every field has one). */
export function auditActionOf(mutationField: string): AuditAction {
  const action = MUTATION_AUDIT_ACTIONS[mutationField];
  if (action === undefined) throw new Error(`Mutation.${mutationField} has no audit action`);
  return action;
}

/** True when the service reports how an operation of this action ended (so the edge must not). */
export function reportedByService(action: AuditAction): boolean {
  return SERVICE_ACTIONS.has(action);
}

/** Throws, naming them, when a Mutation field of `schema` has no audit action: run while the schema is built. */
export function assertEveryMutationAudited(schema: GraphQLSchema): void {
  const fields = Object.keys(schema.getMutationType()?.getFields() ?? {});
  const missing = fields.filter((field) => !Object.hasOwn(MUTATION_AUDIT_ACTIONS, field));
  if (missing.length > 0) {
    throw new Error(`Every mutation needs an audit action (src/graphql/audit.ts, MUTATION_AUDIT_ACTIONS); missing: ${missing.map((f) => `Mutation.${f}`).join(", ")}`);
  }
}

/** Who asked, in which request: what every audit line carries besides the operation. */
export interface AuditSource {
  readonly log: Logger;
  readonly requestId: string;
  /** The caller's `sub`, or null when the request was refused before a caller was known. */
  readonly sub: string | null;
}

/** One audit line: who asked for what on which profile, and how it ended. */
interface AuditEntry {
  action: AuditAction;
  sub: string | null;
  /** The profile asked for, as given (bounded), or null when the input had none. */
  profileId: string | null;
  /** `OK`, or the error code the caller was answered with. */
  outcome: "OK" | ErrorCode;
  deelRequestId: string | undefined;
  requestId: string;
}

/** A profile id as given by a caller can be anything; the audit line keeps at most this much of it. */
const MAX_LOGGED_PROFILE_ID = 64;

function writeAudit(log: Logger, entry: AuditEntry): void {
  const profileId = entry.profileId === null ? null : entry.profileId.slice(0, MAX_LOGGED_PROFILE_ID);
  log.info(
    {
      audit: {
        action: entry.action,
        sub: entry.sub,
        profileId,
        outcome: entry.outcome,
        deelRequestId: entry.deelRequestId ?? null,
        requestId: entry.requestId,
      },
    },
    `worker session ${entry.action}: ${entry.outcome}`,
  );
}

/** The code a thrown error is answered with (the same classifier `formatError` uses); the history records refusals with it too. */
export function outcomeOf(error: unknown): ErrorCode {
  return classifyFailure(error)?.code ?? "INTERNAL_SERVER_ERROR";
}

/**
 * The line of a mutation refused before its resolver ran. `profileId` is the input's as given
 * (a refused input may not be a UUID), or null when there is none.
 */
export function auditRefusal(source: AuditSource, action: AuditAction, profileId: unknown, code: ErrorCode): void {
  writeAudit(source.log, {
    action,
    sub: source.sub,
    profileId: typeof profileId === "string" ? profileId : null,
    outcome: code,
    deelRequestId: undefined,
    requestId: source.requestId,
  });
}

/** The line of a mutation the service does not report (a job start), once its resolver settled: `error` absent on success. */
export function auditEdgeOutcome(source: AuditSource, action: AuditAction, error?: unknown): void {
  writeAudit(source.log, {
    action,
    sub: source.sub,
    profileId: null,
    outcome: error === undefined ? "OK" : outcomeOf(error),
    deelRequestId: undefined,
    requestId: source.requestId,
  });
}

/** The audit line of one service operation (create, revoke, magic link; a job's revokes too): the service's `report`. */
export function auditSessionOutcome(outcome: SessionOutcome): void {
  writeAudit(outcome.actor.log, {
    action: outcome.action,
    sub: outcome.actor.sub,
    profileId: outcome.profileId,
    outcome: outcome.error === undefined ? "OK" : outcomeOf(outcome.error),
    deelRequestId: outcome.deelRequestId,
    requestId: outcome.actor.requestId,
  });
}
