import { statusOf, type SessionRecord } from "../sessions/record.js";
import { WorkerSessionStatus } from "./types/worker-session.type.js";

/** A ledger record as GraphQL shows it: with its status derived from the clock at read time. */
export type SessionView = SessionRecord & { status: WorkerSessionStatus };

/**
 * Derives the status once per record and request, so `WorkerSession.status` needs no resolver of
 * its own (an `_entities` fetch of 100 workers would otherwise run 100 more).
 */
export function toSessionView(record: SessionRecord, now: Date = new Date()): SessionView {
  return { ...record, status: WorkerSessionStatus[statusOf(record, now)] };
}
