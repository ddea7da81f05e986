import type { SessionRecord, SessionStatus } from "../sessions/record.js";
import { WorkerSessionStatus } from "./types/worker-session.type.js";

/**
 * A ledger record as GraphQL shows it: keyed by its profile id (`WorkerSession.id`), with its status
 * derived from the clock at read time.
 */
export type SessionView = SessionRecord & { id: string; status: WorkerSessionStatus };

/**
 * Sets the key and takes the status, derived once per record and request by the service's clock, so
 * `WorkerSession.id` and `WorkerSession.status` need no resolvers of their own (an `_entities`
 * fetch of 100 workers would otherwise run two more per worker).
 */
export function toSessionView(record: SessionRecord, status: SessionStatus): SessionView {
  // The ledger is keyed by ProfileId, already in its one (lower-case) spelling.
  return { ...record, id: record.profileId, status: WorkerSessionStatus[status] };
}
