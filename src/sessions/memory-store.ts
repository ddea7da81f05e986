import type { MintIntent } from "./intent.js";
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

/**
 * A ledger in process memory (`SESSION_STORE_URL=memory:`): for tests and throwaway runs. It
 * forgets everything on restart. Records are copied in and out so callers never share state.
 */
export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, SessionRecord>();
  private readonly intents = new Map<string, MintIntent>();
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
    this.records.set(record.profileId, copy(record));
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

  async beginMint(intent: MintIntent): Promise<void> {
    this.assertOpen();
    this.intents.set(intent.profileId, { ...intent, startedAt: new Date(intent.startedAt) });
  }

  async endMint(profileId: string, startedAt?: Date): Promise<void> {
    this.assertOpen();
    const intent = this.intents.get(profileId);
    if (intent !== undefined && (startedAt === undefined || intent.startedAt.getTime() === startedAt.getTime())) this.intents.delete(profileId);
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
