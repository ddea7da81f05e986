import type { MintIntent } from "./intent.js";
import type { SessionRecord } from "./record.js";

/**
 * How the ledger's values are written, in every backend: the JSON earlier releases kept in Redis, so
 * a Redis they filled reads the same. A record is one JSON string with ISO-8601 times (readable in
 * redis-cli); an intent is one JSON string with `startedAt` in epoch ms (compared as a number).
 */
interface StoredRecord {
  profileId: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  createdBy: string;
  revokedBy: string | null;
}

export function encodeRecord(record: SessionRecord): string {
  const stored: StoredRecord = {
    profileId: record.profileId,
    createdAt: record.createdAt.toISOString(),
    expiresAt: record.expiresAt.toISOString(),
    revokedAt: record.revokedAt === null ? null : record.revokedAt.toISOString(),
    createdBy: record.createdBy,
    revokedBy: record.revokedBy,
  };
  return JSON.stringify(stored);
}

function date(value: unknown, field: string): Date {
  const parsed = typeof value === "string" ? new Date(value) : new Date(Number.NaN);
  if (!Number.isFinite(parsed.getTime())) throw new Error(`a ledger record has an unreadable ${field}`);
  return parsed;
}

/** Throws on a value that is not a session record (never a half-read record). */
export function decodeRecord(raw: string): SessionRecord {
  const value = JSON.parse(raw) as Partial<Record<keyof StoredRecord, unknown>>;
  if (typeof value.profileId !== "string" || typeof value.createdBy !== "string") {
    throw new Error("a ledger record is not a session record");
  }
  return {
    profileId: value.profileId,
    createdAt: date(value.createdAt, "createdAt"),
    expiresAt: date(value.expiresAt, "expiresAt"),
    revokedAt: value.revokedAt === null || value.revokedAt === undefined ? null : date(value.revokedAt, "revokedAt"),
    createdBy: value.createdBy,
    revokedBy: typeof value.revokedBy === "string" ? value.revokedBy : null,
  };
}

export function encodeIntent(intent: MintIntent): string {
  return JSON.stringify({ profileId: intent.profileId, createdBy: intent.createdBy, startedAt: intent.startedAt.getTime() });
}

/** Throws on a value that is not a mint intent. */
export function decodeIntent(raw: string): MintIntent {
  const value = JSON.parse(raw) as { profileId?: unknown; createdBy?: unknown; startedAt?: unknown };
  if (typeof value.profileId !== "string" || typeof value.createdBy !== "string" || typeof value.startedAt !== "number") {
    throw new Error("a mint intent is unreadable");
  }
  return { profileId: value.profileId, createdBy: value.createdBy, startedAt: new Date(value.startedAt) };
}

/** An unreadable value reads as nothing where a rule only needs to know what it may replace. */
export function tryDecode<T>(decode: (raw: string) => T, raw: string | null): T | null {
  if (raw === null) return null;
  try {
    return decode(raw);
  } catch {
    return null;
  }
}
