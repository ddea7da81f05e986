/**
 * The few primitives every backend of the ledger and the revocation jobs offers, and nothing more:
 * the rules (which intent stays, which revoke wins, who holds a job's lease) are decided once, in
 * TypeScript, over these (sessions/ledger.ts, sessions/jobs/ledger-job-store.ts). A backend that
 * implements this file (SQLite, Redis; PostgreSQL next) runs every rule the same way.
 *
 * The model is Redis's, kept small. A key holds one of:
 * - a string value (`get`, `put`);
 * - a map of fields to strings (`fields`, `setField`), e.g. a job and its counts;
 * - a set of members (`members`, `isMember`, `addMember`), e.g. an index;
 * - an ordered list of items (`pages`, `addItem`, `removeItem`), e.g. a history: each item sits at a
 *   position, a string, and the items are ordered by position, compared byte by byte; one item per
 *   position (adding at a held position replaces that item). Positions never contain "\0".
 * Any key may expire at an absolute time (epoch ms); an expired key reads as absent everywhere.
 *
 * Writes are conditional: `commit(conditions, writes)` applies every write, atomically, only if every
 * condition still holds when it runs, and answers false (writing nothing) otherwise. A condition
 * names a string key, or one field of a map, and the exact value it must hold (null: absent). The
 * value read IS the version: a writer reads, decides, and commits on what it read (compare-and-set
 * over several keys). A value that changed and changed back passes, which is sound for every rule
 * here, since each decides from the values alone.
 */

/** A string key, or one field of a map key, must hold exactly `equals` (null: be absent or expired). */
export interface Condition {
  readonly key: string;
  readonly field?: string;
  readonly equals: string | null;
}

/**
 * One change. `put` replaces a string key's value and its expiry: with `expireAt` the key vanishes
 * then (at once, when that time has passed), without it the key never expires.
 * `expireAt` on a key of any kind sets when it vanishes; with `extendOnly`, only later than now
 * planned (a key without an expiry gets this one; one that outlives `at` keeps its own).
 */
export type Write =
  | { readonly op: "put"; readonly key: string; readonly value: string; readonly expireAt?: number }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "setField"; readonly key: string; readonly field: string; readonly value: string }
  | { readonly op: "addMember"; readonly key: string; readonly member: string }
  | { readonly op: "removeMember"; readonly key: string; readonly member: string }
  | { readonly op: "expireAt"; readonly key: string; readonly at: number; readonly extendOnly?: boolean }
  /**
   * Adds an item to an ordered key at `position` (replacing the item there, if any); with
   * `pruneBelow`, every item at a position below it is removed in the same write (retention).
   */
  | { readonly op: "addItem"; readonly key: string; readonly position: string; readonly value: string; readonly pruneBelow?: string }
  /** Removes the item at `position` of an ordered key, if any (an empty ordered key is no key). */
  | { readonly op: "removeItem"; readonly key: string; readonly position: string };

/** One item of an ordered key. */
export interface OrderedItem {
  readonly position: string;
  readonly value: string;
}

/**
 * One page of an ordered key: its items at positions strictly below `below` (from the top when
 * absent) and strictly above `above` (to the bottom when absent), highest position first, at most `limit`.
 */
export interface PageRequest {
  readonly key: string;
  readonly below?: string;
  readonly above?: string;
  readonly limit: number;
}

/**
 * A backend. Every method is one round trip to the backing store (`members` of a large set may take
 * a few, never blocking the server for long). Every failure to reach the backing store rejects, fast,
 * with the error the backend's `fail` option makes (a `StorageUnavailableError` by default).
 */
export interface Storage {
  /** The values of string keys, in the order asked, null where absent or expired; duplicates allowed. */
  get(keys: readonly string[]): Promise<Array<string | null>>;
  /** A map's fields: the ones named (absent ones left out), or every field when none are named. */
  fields(key: string, names?: readonly string[]): Promise<Map<string, string>>;
  /** A set's members, in no particular order ([] when the set is absent). */
  members(key: string): Promise<string[]>;
  isMember(key: string, member: string): Promise<boolean>;
  /**
   * Pages of ordered keys, one per request in the order asked ([] for an absent key), in one round
   * trip whatever the number of requests: highest position first (see PageRequest).
   */
  pages(requests: readonly PageRequest[]): Promise<OrderedItem[][]>;
  /** Applies `writes` atomically if every condition holds; false (nothing written) when one does not. */
  commit(conditions: readonly Condition[], writes: readonly Write[]): Promise<boolean>;
  /** Resolves when the backing store answers (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Turns a backing store's failure into the error its users throw (the ledger's `LedgerError`). */
export type FailureMapper = (operation: string, cause: unknown) => Error;

/** The backing store could not be reached or did not answer in time. */
export class StorageUnavailableError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`the storage failed on ${operation}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "StorageUnavailableError";
  }
}

export const defaultFailure: FailureMapper = (operation, cause) => new StorageUnavailableError(operation, cause);
