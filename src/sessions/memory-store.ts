import { WORKER_TOKEN_LIFETIME_MS, type MintIntent } from "./intent.js";
import type { SessionRecord } from "./record.js";
import type { SessionStore } from "./store.js";

function copy(record: SessionRecord): SessionRecord {
  return {
    ...record,
    createdAt: new Date(record.createdAt),
    expiresAt: new Date(record.expiresAt),
    revokedAt: record.revokedAt === null ? null : new Date(record.revokedAt),
  };
}

/** Whether a stored intent begun at `olderAt` stays when a mint begins at `startedAt` (see SessionStore.beginMint). */
function keepsOlder(olderAt: number, startedAt: number): boolean {
  return olderAt <= startedAt && startedAt - olderAt < WORKER_TOKEN_LIFETIME_MS;
}

/**
 * A ledger in process memory (`SESSION_STORE_URL=memory:`): for tests and throwaway runs. It
 * forgets everything on restart. Records are copied in and out so callers never share state.
 */
export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, SessionRecord>();
  private readonly intents = new Map<string, MintIntent>();
  /** The createdBy index: creator's sub → the profiles whose current record that creator minted. */
  private readonly byCreator = new Map<string, Set<string>>();
  private closed = false;

  async get(profileId: string): Promise<SessionRecord | null> {
    this.assertOpen();
    const record = this.records.get(profileId);
    return record === undefined ? null : copy(record);
  }

  async getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>> {
    this.assertOpen();
    return profileIds.map((id) => {
      const record = this.records.get(id);
      return record === undefined ? null : copy(record);
    });
  }

  async put(record: SessionRecord): Promise<void> {
    this.assertOpen();
    const previous = this.records.get(record.profileId);
    if (previous !== undefined && previous.createdBy !== record.createdBy) {
      const entries = this.byCreator.get(previous.createdBy);
      entries?.delete(record.profileId);
      if (entries?.size === 0) this.byCreator.delete(previous.createdBy);
    }
    let entries = this.byCreator.get(record.createdBy);
    if (entries === undefined) {
      entries = new Set();
      this.byCreator.set(record.createdBy, entries);
    }
    entries.add(record.profileId);
    this.records.set(record.profileId, copy(record));
  }

  async listByCreator(createdBy: string): Promise<SessionRecord[]> {
    this.assertOpen();
    const found: SessionRecord[] = [];
    for (const id of this.byCreator.get(createdBy) ?? []) {
      const record = this.records.get(id);
      if (record !== undefined) found.push(copy(record));
    }
    return found;
  }

  async markRevoked(profileId: string, revokedAt: Date, revokedBy: string): Promise<SessionRecord | null> {
    this.assertOpen();
    const record = this.records.get(profileId);
    if (record === undefined) return null;
    if (record.revokedAt === null) {
      record.revokedAt = new Date(revokedAt);
      record.revokedBy = revokedBy;
    }
    return copy(record);
  }

  async beginMint(intent: MintIntent): Promise<boolean> {
    this.assertOpen();
    const older = this.intents.get(intent.profileId);
    if (older !== undefined && keepsOlder(older.startedAt.getTime(), intent.startedAt.getTime())) return false;
    this.intents.set(intent.profileId, { ...intent, startedAt: new Date(intent.startedAt) });
    return true;
  }

  async endMint(profileId: string, upTo?: Date): Promise<void> {
    this.assertOpen();
    const intent = this.intents.get(profileId);
    if (intent !== undefined && (upTo === undefined || intent.startedAt.getTime() <= upTo.getTime())) this.intents.delete(profileId);
  }

  async getIntents(profileIds: readonly string[]): Promise<Array<MintIntent | null>> {
    this.assertOpen();
    return profileIds.map((id) => {
      const intent = this.intents.get(id);
      return intent === undefined ? null : { ...intent, startedAt: new Date(intent.startedAt) };
    });
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("the memory session store is closed");
  }
}
