import { accepted, refused, type Checked } from "./checked.js";

/**
 * A page of the session history as a caller asks for it (`first`, `after`), checked. Cursors are
 * opaque to callers: the base64url of an event's position in its history (sessions/history.ts),
 * which is the event's time (13 digits of epoch ms), a sequence and a random part.
 */

/** Every position the history makes, and so every cursor's content. */
export const HISTORY_POSITION = /^\d{13}\.[0-9a-z]{1,12}-[0-9a-z]{1,24}$/;

/** The most events one page may hold, and the default. */
export const MAX_HISTORY_FIRST = 100;
export const DEFAULT_HISTORY_FIRST = 20;

declare const historyCursor: unique symbol;
/** A position read from a cursor this gateway gave. */
export type HistoryPosition = string & { readonly [historyCursor]: true };

export interface HistoryPageArgs {
  readonly first: number;
  readonly after: HistoryPosition | undefined;
}

/** The cursor of an event at `position`. */
export function historyCursorOf(position: string): string {
  return Buffer.from(position, "utf8").toString("base64url");
}

/** `first` (absent: 20) is a whole number from 1 to 100; `after` (absent or null: from the newest) a cursor this gateway gave. */
export function parseHistoryPage(first: unknown, after: unknown): Checked<HistoryPageArgs> {
  const count = first === undefined || first === null ? DEFAULT_HISTORY_FIRST : first;
  if (typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > MAX_HISTORY_FIRST) {
    return refused(`first must be a whole number from 1 to ${MAX_HISTORY_FIRST}`);
  }
  if (after === undefined || after === null) return accepted({ first: count, after: undefined });
  if (typeof after !== "string" || after.length > 64 || !/^[A-Za-z0-9_-]+$/.test(after)) return refused("after must be a cursor this gateway gave (endCursor or an edge's cursor)");
  const position = Buffer.from(after, "base64url").toString("utf8");
  if (!HISTORY_POSITION.test(position)) return refused("after must be a cursor this gateway gave (endCursor or an edge's cursor)");
  return accepted({ first: count, after: position as HistoryPosition });
}
