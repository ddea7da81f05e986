/**
 * The session history: every event of a worker's sessions, newest first, the queryable copy of the
 * audit lines ("who could act as this worker, and when?"). Never a token or a link: an event holds
 * who acted, what was done, how it ended, the Deel request id, the revocation job, and when.
 *
 * Each event is an item of an ordered key (storage/storage.ts): one per profile (`history:<id>`)
 * and, for a revocation job's revokes, one per job (`rjob-history:<id>`). The item's position is the
 * event's time (13 digits of epoch ms) followed by a sequence and a random part, so positions sort
 * by time, events of one process keep their order within a millisecond, and two replicas never
 * collide. The position is the event's id and its cursor.
 *
 * Events the ledger's writes describe (a session recorded, a revoke recorded, an intent written or
 * resolved) ride in the same conditional commit as that write (sessions/ledger.ts), so the history
 * never disagrees with the ledger. A mint whose answer is lost leaves no process alive to say so:
 * the intent's write also adds its INTENT_UNKNOWN event, dated when reads start answering UNKNOWN
 * for it, and the intent's resolution before then takes it back. Reads never show an event dated
 * after now, so it appears exactly when the read path turns UNKNOWN.
 *
 * Retention (`SESSION_RETENTION_DAYS`, on every backend, at least a day): each append prunes the
 * key's events older than the retention and keeps the key alive that long past its latest event;
 * reads leave out events past it.
 */
import { randomBytes } from "node:crypto";
import { MAX_HISTORY_FIRST } from "../base/history-page.js";
import type { OrderedItem, PageRequest, Write } from "../storage/storage.js";
import { keyNames } from "../redis/keys.js";

/** What an event records. */
export type HistoryAction =
  /** A fresh token minted at Deel and recorded (by a create or a magic link). */
  | "MINT"
  /** Deel replayed an earlier answer for the same caller and idempotency key. */
  | "REPLAY"
  /** A magic link made from the worker's token (the link itself is never kept). */
  | "MAGIC_LINK"
  /** A revoke by a caller. */
  | "REVOKE"
  /** A revoke by a revocation job (the kill switch); `jobId` names the job. */
  | "JOB_REVOKE"
  /** A mint's intent written before Deel is asked. */
  | "INTENT_WRITTEN"
  /** A mint's intent resolved: its answer recorded, Deel minted nothing, or a revoke ended it. */
  | "INTENT_RESOLVED"
  /** A mint's answer was lost: reads answer UNKNOWN from this time until a revoke or a new create. */
  | "INTENT_UNKNOWN";

/** An event as kept and as read. */
export interface HistoryEvent {
  /** The event's position in its history: its id, and the cursor just past it. */
  readonly id: string;
  readonly profileId: string;
  readonly action: HistoryAction;
  /** `OK`, an error code of the contract (the refusal the caller got), or `UNKNOWN` (INTENT_UNKNOWN). */
  readonly outcome: string;
  /** The caller's `sub` (a job's revokes: the operator who started it). */
  readonly actor: string;
  /** The gateway request id (a job's revokes: `revocation-job:<id>`). */
  readonly requestId: string;
  readonly deelRequestId: string | null;
  readonly jobId: string | null;
  readonly at: Date;
}

/** An event to append: the position is made from `at` when it is not given. */
export type NewHistoryEvent = Omit<HistoryEvent, "id" | "at"> & { readonly at: number; readonly id?: string };

/**
 * Who acts, in which request and why: what the service hands each ledger write it makes, from which
 * the ledger writes that write's events (the session recorded as MINT or REPLAY, a revoke as REVOKE
 * or JOB_REVOKE, and the intent events of the same actor).
 */
export interface HistoryNote {
  readonly actor: string;
  readonly requestId: string;
  readonly action: HistoryAction;
  readonly jobId?: string | undefined;
  readonly deelRequestId?: string | undefined;
  /**
   * When the event happened (epoch ms), and its position: given (see `stampNote`), a write made
   * again (a kept write replayed, once or twice, or one that landed unseen) replaces its event
   * instead of adding another, and the event keeps its time. Absent: the write's own time and a new position.
   */
  readonly at?: number | undefined;
  readonly id?: string | undefined;
}

/** The note dated `ms` with a position of its own, unless it has one: how a write that may be made again keeps one event. */
export function stampNote(note: HistoryNote, ms: number): HistoryNote {
  return note.at !== undefined && note.id !== undefined ? note : { ...note, at: ms, id: positionAt(ms) };
}

/** Whose history: a worker profile's, or a revocation job's revokes. */
export type HistorySubject = { readonly kind: "profile"; readonly id: string } | { readonly kind: "job"; readonly id: string };

/** One page asked for: the `first` events below the cursor `after` (from the newest when absent). */
export interface HistoryPageRequest {
  readonly subject: HistorySubject;
  readonly first: number;
  readonly after?: string | undefined;
}

export interface HistoryPage {
  readonly events: HistoryEvent[];
  /** More events lie below the last one of this page. */
  readonly hasNextPage: boolean;
}

export const DAY_MS = 24 * 3600 * 1000;
/** The default history retention (`SESSION_RETENTION_DAYS` = 7). */
export const DEFAULT_HISTORY_RETENTION_MS = 7 * DAY_MS;

/** The history keeps at least a day, whatever `SESSION_RETENTION_DAYS` says (0 keeps no record, not no history). */
export function historyRetentionMs(retentionMs: number | null | undefined): number {
  return Math.max(DAY_MS, retentionMs ?? DEFAULT_HISTORY_RETENTION_MS);
}

/** The 13-digit time prefix of positions at `ms` (epoch ms, up to the year 2286). */
function timePrefix(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(13, "0");
}

let sequence = 0;

/** A new position at `ms`: after every position this process made earlier in the same millisecond. */
export function positionAt(ms: number): string {
  sequence = (sequence + 1) % 1_000_000;
  return `${timePrefix(ms)}.${String(sequence).padStart(6, "0")}-${randomBytes(4).toString("hex")}`;
}

/** The position of the INTENT_UNKNOWN event a mint's intent begun at `startedAt` may turn into (one per intent). */
export function unknownPosition(startedAt: number, unknownAt: number): string {
  return `${timePrefix(unknownAt)}.000000-u${startedAt.toString(36)}`;
}

/** The key of a subject's history. */
export function historyKey(subject: HistorySubject): string {
  return subject.kind === "profile" ? keyNames.history(subject.id) : keyNames.jobHistory(subject.id);
}

interface StoredEvent {
  p: string;
  a: HistoryAction;
  o: string;
  s: string;
  r: string;
  d: string | null;
  j: string | null;
  t: number;
}

function encodeEvent(event: NewHistoryEvent): string {
  const stored: StoredEvent = {
    p: event.profileId,
    a: event.action,
    o: event.outcome,
    s: event.actor,
    r: event.requestId,
    d: event.deelRequestId,
    j: event.jobId,
    t: event.at,
  };
  return JSON.stringify(stored);
}

/** An unreadable item reads as nothing (a page never fails on one bad event). */
function decodeEvent(item: OrderedItem): HistoryEvent | null {
  try {
    const v = JSON.parse(item.value) as Partial<StoredEvent>;
    if (typeof v.p !== "string" || typeof v.a !== "string" || typeof v.o !== "string" || typeof v.s !== "string" || typeof v.t !== "number") return null;
    return {
      id: item.position,
      profileId: v.p,
      action: v.a,
      outcome: v.o,
      actor: v.s,
      requestId: typeof v.r === "string" ? v.r : "",
      deelRequestId: typeof v.d === "string" ? v.d : null,
      jobId: typeof v.j === "string" ? v.j : null,
      at: new Date(v.t),
    };
  } catch {
    return null;
  }
}

/**
 * The writes that append `events`: each to its profile's history, and to its job's when it has one,
 * pruning what is past the retention and keeping each key alive a retention past its latest event.
 */
export function historyWrites(events: readonly NewHistoryEvent[], now: number, retentionMs: number): Write[] {
  const writes: Write[] = [];
  const pruneBelow = timePrefix(now - retentionMs);
  for (const event of events) {
    const position = event.id ?? positionAt(event.at);
    const value = encodeEvent(event);
    const expireAt = Math.max(now, event.at) + retentionMs;
    const subjects: HistorySubject[] = [{ kind: "profile", id: event.profileId }];
    if (event.jobId !== null) subjects.push({ kind: "job", id: event.jobId });
    for (const subject of subjects) {
      const key = historyKey(subject);
      writes.push({ op: "addItem", key, position, value, pruneBelow }, { op: "expireAt", key, at: expireAt, extendOnly: true });
    }
  }
  return writes;
}

/** The storage read of one page: one more event than asked, to know whether another page follows. */
export function historyPageRead(request: HistoryPageRequest, now: number, retentionMs: number): PageRequest {
  // Never an event dated after now (a pending INTENT_UNKNOWN), never one past the retention.
  const ceiling = timePrefix(now + 1);
  const below = request.after !== undefined && request.after < ceiling ? request.after : ceiling;
  const first = Math.min(MAX_HISTORY_FIRST, Math.max(0, request.first));
  return { key: historyKey(request.subject), below, above: timePrefix(now - retentionMs), limit: first + 1 };
}

/** The page made of what `historyPageRead` read. */
export function historyPage(items: readonly OrderedItem[], first: number): HistoryPage {
  first = Math.min(MAX_HISTORY_FIRST, Math.max(0, first));
  const events: HistoryEvent[] = [];
  for (const item of items.slice(0, first)) {
    const event = decodeEvent(item);
    if (event !== null) events.push(event);
  }
  return { events, hasNextPage: items.length > first };
}
