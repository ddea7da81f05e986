import type { Logger } from "pino";
import type { SessionOutcome } from "../sessions/service.js";
import { classifyFailure, type ErrorCode } from "./failures.js";

/** The mutations that leave an audit line. */
export type AuditAction = "create" | "revoke" | "magic_link" | "revoke_job";

/** One audit line: who asked for what on which profile, and how it ended. */
export interface AuditEntry {
  action: AuditAction;
  /** The caller's `sub`, or null when the request was refused before a caller was known. */
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

/**
 * Writes the audit line of one create or revoke, refused or not. Every audit line in the gateway
 * goes through here, so they share one shape: `{ audit: { action, sub, profileId, outcome,
 * deelRequestId, requestId } }` at `info`.
 */
export function writeAudit(log: Logger, entry: AuditEntry): void {
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

/** The audit line of one service operation (create, revoke, magic link; a job's revokes too). */
export function auditSessionOutcome(outcome: SessionOutcome): void {
  const code = outcome.error === undefined ? "OK" : (classifyFailure(outcome.error)?.code ?? "INTERNAL_SERVER_ERROR");
  writeAudit(outcome.actor.log, {
    action: outcome.action,
    sub: outcome.actor.sub,
    profileId: outcome.profileId,
    outcome: code,
    deelRequestId: outcome.deelRequestId,
    requestId: outcome.actor.requestId,
  });
}
