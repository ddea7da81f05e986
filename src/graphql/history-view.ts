import { historyCursorOf } from "../base/history-page.js";
import type { HistoryEvent, HistoryPage } from "../sessions/history.js";
import { WorkerSessionEventAction, type WorkerSessionEvent, type WorkerSessionEventConnection } from "./types/history.type.js";

/** An event as GraphQL shows it: every field as kept, the action as the schema's enum. */
function toEventView(event: HistoryEvent): WorkerSessionEvent {
  return {
    id: event.id,
    profileId: event.profileId,
    action: WorkerSessionEventAction[event.action],
    outcome: event.outcome,
    actor: event.actor,
    requestId: event.requestId,
    deelRequestId: event.deelRequestId,
    jobId: event.jobId,
    at: event.at,
  };
}

/** A history page as a Relay-style connection: each edge's cursor is its event's position, made opaque. */
export function toConnection(page: HistoryPage): WorkerSessionEventConnection {
  const edges = page.events.map((event) => ({ cursor: historyCursorOf(event.id), node: toEventView(event) }));
  return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
}
