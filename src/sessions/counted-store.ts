import type { WriteFence } from "./fencing.js";
import type { HistoryNote, HistoryPage, HistoryPageRequest, NewHistoryEvent } from "./history.js";
import type { MintIntent } from "./intent.js";
import type { SessionRecord } from "./record.js";
import type { ProfileState, SessionStore } from "./store.js";

/** Something that counts ledger reads (a Prometheus counter in the app). */
export interface ReadCounter {
  inc(labels: { op: "get" | "get_many" | "history" }): void;
}

/**
 * Wraps a store so that every read is counted: the benchmark and /metrics show reads per request.
 * A batch read (`getMany`, `getStates`: one round trip each) counts as one `get_many`; a read of
 * history pages (one round trip, however many pages) as one `history`.
 */
export class CountedStore implements SessionStore {
  constructor(
    private readonly inner: SessionStore,
    private readonly reads: ReadCounter,
  ) {}

  get(profileId: string): Promise<SessionRecord | null> {
    this.reads.inc({ op: "get" });
    return this.inner.get(profileId);
  }

  getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>> {
    this.reads.inc({ op: "get_many" });
    return this.inner.getMany(profileIds);
  }

  getStates(profileIds: readonly string[]): Promise<ProfileState[]> {
    this.reads.inc({ op: "get_many" });
    return this.inner.getStates(profileIds);
  }

  put(record: SessionRecord, fence: WriteFence, note?: HistoryNote): Promise<void> {
    return this.inner.put(record, fence, note);
  }

  putUnlessOvertaken(record: SessionRecord, since: Date, fence: WriteFence, note?: HistoryNote): Promise<boolean> {
    return this.inner.putUnlessOvertaken(record, since, fence, note);
  }

  markRevoked(profileId: string, revokedAt: Date, revokedBy: string, fence: WriteFence, note?: HistoryNote): Promise<SessionRecord | null> {
    return this.inner.markRevoked(profileId, revokedAt, revokedBy, fence, note);
  }

  beginMint(intent: MintIntent, fence: WriteFence, note?: HistoryNote): Promise<boolean> {
    return this.inner.beginMint(intent, fence, note);
  }

  endMint(profileId: string, fence: WriteFence, upTo?: Date, note?: HistoryNote): Promise<void> {
    return this.inner.endMint(profileId, fence, upTo, note);
  }

  appendHistory(events: readonly NewHistoryEvent[]): Promise<void> {
    return this.inner.appendHistory(events);
  }

  readHistory(requests: readonly HistoryPageRequest[]): Promise<HistoryPage[]> {
    this.reads.inc({ op: "history" });
    return this.inner.readHistory(requests);
  }

  listByCreator(createdBy: string): Promise<SessionRecord[]> {
    return this.inner.listByCreator(createdBy);
  }

  listIntentsByCreator(createdBy: string): Promise<MintIntent[]> {
    return this.inner.listIntentsByCreator(createdBy);
  }

  getIntents(profileIds: readonly string[]): Promise<Array<MintIntent | null>> {
    return this.inner.getIntents(profileIds);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
