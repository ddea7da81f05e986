import { SpanKind, SpanStatusCode, type Tracer } from "@opentelemetry/api";
import type { WriteFence } from "../sessions/fencing.js";
import type { HistoryNote, HistoryPage, HistoryPageRequest, NewHistoryEvent } from "../sessions/history.js";
import type { MintIntent } from "../sessions/intent.js";
import type { SessionRecord } from "../sessions/record.js";
import type { ProfileState, SessionStore } from "../sessions/store.js";

/**
 * The ledger with one span per operation (`ledger get_states`, `ledger put` …), as CountedStore
 * counts its reads. Recorded: the operation, the backend (`db.system.name`: sqlite, redis,
 * postgresql, memory) and how many profiles a batch read asked for. Never a record's content or a
 * profile id. Readiness pings are left out: a probe every few seconds would be a trace of its own.
 */
export class TracedStore implements SessionStore {
  constructor(
    private readonly inner: SessionStore,
    private readonly tracer: Tracer,
    private readonly system: string,
  ) {}

  private async span<T>(operation: string, run: () => Promise<T>, profiles?: number): Promise<T> {
    const attributes: Record<string, string | number> = { "db.system.name": this.system, "db.operation.name": operation };
    if (profiles !== undefined) attributes["ledger.profiles"] = profiles;
    const span = this.tracer.startSpan(`ledger ${operation}`, { kind: SpanKind.CLIENT, attributes });
    try {
      return await run();
    } catch (error) {
      const name = error instanceof Error ? error.name : "error";
      span.setAttribute("error.type", name);
      span.setStatus({ code: SpanStatusCode.ERROR, message: name });
      throw error;
    } finally {
      span.end();
    }
  }

  get(profileId: string): Promise<SessionRecord | null> {
    return this.span("get", () => this.inner.get(profileId), 1);
  }

  getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>> {
    return this.span("get_many", () => this.inner.getMany(profileIds), profileIds.length);
  }

  getStates(profileIds: readonly string[]): Promise<ProfileState[]> {
    return this.span("get_states", () => this.inner.getStates(profileIds), profileIds.length);
  }

  put(record: SessionRecord, fence: WriteFence, note?: HistoryNote): Promise<void> {
    return this.span("put", () => this.inner.put(record, fence, note));
  }

  putUnlessOvertaken(record: SessionRecord, since: Date, fence: WriteFence, note?: HistoryNote): Promise<boolean> {
    return this.span("put_unless_overtaken", () => this.inner.putUnlessOvertaken(record, since, fence, note));
  }

  markRevoked(profileId: string, revokedAt: Date, revokedBy: string, fence: WriteFence, note?: HistoryNote): Promise<SessionRecord | null> {
    return this.span("mark_revoked", () => this.inner.markRevoked(profileId, revokedAt, revokedBy, fence, note));
  }

  beginMint(intent: MintIntent, fence: WriteFence, note?: HistoryNote): Promise<boolean> {
    return this.span("begin_mint", () => this.inner.beginMint(intent, fence, note));
  }

  endMint(profileId: string, fence: WriteFence, upTo?: Date, note?: HistoryNote): Promise<void> {
    return this.span("end_mint", () => this.inner.endMint(profileId, fence, upTo, note));
  }

  listByCreator(createdBy: string): Promise<SessionRecord[]> {
    return this.span("list_by_creator", () => this.inner.listByCreator(createdBy));
  }

  listIntentsByCreator(createdBy: string): Promise<MintIntent[]> {
    return this.span("list_intents_by_creator", () => this.inner.listIntentsByCreator(createdBy));
  }

  getIntents(profileIds: readonly string[]): Promise<Array<MintIntent | null>> {
    return this.span("get_intents", () => this.inner.getIntents(profileIds), profileIds.length);
  }

  appendHistory(events: readonly NewHistoryEvent[]): Promise<void> {
    return this.span("append_history", () => this.inner.appendHistory(events));
  }

  readHistory(requests: readonly HistoryPageRequest[]): Promise<HistoryPage[]> {
    return this.span("read_history", () => this.inner.readHistory(requests), requests.length);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
