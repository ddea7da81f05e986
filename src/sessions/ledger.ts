import { systemClock, type Clock } from "../base/clock.js";
import { keyNames } from "../redis/keys.js";
import type { Condition, Storage, Write } from "../storage/storage.js";
import { ContentionError, transact, type Decision } from "../storage/transact.js";
import { LedgerError } from "./errors.js";
import type { WriteFence } from "./fencing.js";
import {
  historyPage,
  historyPageRead,
  historyRetentionMs,
  historyWrites,
  positionAt,
  unknownPosition,
  historyKey,
  type HistoryNote,
  type HistoryPage,
  type HistoryPageRequest,
  type NewHistoryEvent,
} from "./history.js";
import { intentMayBeLive, intentStaleAfterMs, WORKER_TOKEN_LIFETIME_MS, type MintIntent } from "./intent.js";
import { decodeIntent, decodeRecord, encodeIntent, encodeRecord, tryDecode } from "./ledger-codec.js";
import type { SessionRecord } from "./record.js";
import type { ProfileState, SessionStore } from "./store.js";

export interface LedgerOptions {
  /**
   * How long a record stays readable after its session expires (`SESSION_RETENTION_DAYS`), in ms;
   * null: until it is replaced (the SQLite ledger has always kept its records).
   */
  retentionMs: number | null;
  /** Times every write's expiries. Default: the system clock. */
  clock?: Clock;
  /** Close the storage in `close()`. Default true. */
  ownsStorage?: boolean;
  /**
   * How long the session history keeps an event (`SESSION_RETENTION_DAYS`, at least a day), in ms.
   * Default: `retentionMs`, or 7 days without one.
   */
  historyRetentionMs?: number;
  /**
   * How old an unresolved intent is when reads answer UNKNOWN for it (`intentStaleAfterMs`): when its
   * INTENT_UNKNOWN event is dated. Default: for the default Deel deadline (8 s).
   */
  unknownAfterMs?: number;
}

/** A noted write's event: at the note's time and position when it has them (a write made again replaces it), else at `now`. */
function notedEvent(profileId: string, note: HistoryNote, action: HistoryNote["action"], now: number): NewHistoryEvent {
  return {
    profileId,
    action,
    outcome: "OK",
    actor: note.actor,
    requestId: note.requestId,
    deelRequestId: note.deelRequestId ?? null,
    jobId: note.jobId ?? null,
    at: note.at ?? now,
    ...(note.id === undefined ? {} : { id: note.id }),
  };
}

/** Records the createdBy index reads per batch. */
const INDEX_BATCH = 500;

/** Whether a stored intent begun at `olderAt` stays when a mint begins at `startedAt` (see SessionStore.beginMint). */
function keepsOlder(olderAt: number, startedAt: number): boolean {
  return olderAt <= startedAt && startedAt - olderAt < WORKER_TOKEN_LIFETIME_MS;
}

function fenced(profileId: string): LedgerError {
  return new LedgerError(
    "fenced",
    `Ledger write for profile ${profileId} refused: this replica's lock on the profile expired and a newer operation started`,
  );
}

/**
 * The ledger's rules, once, over any storage (storage/storage.ts): each write reads what it decides
 * from, decides here, and commits on what it read, again from the start when another writer got in
 * between. The keys are keys.ts's: `session:<id>` (a record, expiring at its session's expiry plus
 * the retention), `intent:<id>` (a mint under way, expiring after a token's lifetime),
 * `creator:<sub>` (the createdBy index, a set living as long as its longest-lived record) and
 * `mints-by:<sub>` (the mints a caller began: profile → start, living as long as its latest intent could),
 * and the session history's ordered keys `history:<id>` and `rjob-history:<job>` (history.ts): a write
 * given a note appends its events in its own commit.
 *
 * A write with a Redis lock's fence also reads `fence:<id>` and is conditioned on it: refused
 * (LedgerError `fenced`) once a later holder took the lock. Every storage failure is a LedgerError
 * `unavailable` (the backend's `fail` option, see create-store.ts); a write that keeps losing its
 * race is a LedgerError `busy`.
 */
export class Ledger implements SessionStore {
  private readonly storage: Storage;
  private readonly retentionMs: number | null;
  private readonly clock: Clock;
  private readonly ownsStorage: boolean;
  private readonly historyRetentionMs: number;
  private readonly unknownAfterMs: number;

  constructor(storage: Storage, options: LedgerOptions) {
    if (options.retentionMs !== null && (!Number.isFinite(options.retentionMs) || options.retentionMs < 0)) {
      throw new TypeError("retentionMs must be ≥ 0 or null");
    }
    this.storage = storage;
    this.retentionMs = options.retentionMs;
    this.clock = options.clock ?? systemClock;
    this.ownsStorage = options.ownsStorage ?? true;
    this.historyRetentionMs = historyRetentionMs(options.historyRetentionMs ?? options.retentionMs);
    this.unknownAfterMs = options.unknownAfterMs ?? intentStaleAfterMs(8_000);
  }

  async get(profileId: string): Promise<SessionRecord | null> {
    const [raw] = await this.storage.get([keyNames.session(profileId)]);
    return raw === null || raw === undefined ? null : decodeRecord(raw);
  }

  async getMany(profileIds: readonly string[]): Promise<Array<SessionRecord | null>> {
    if (profileIds.length === 0) return [];
    const raws = await this.storage.get(profileIds.map(keyNames.session));
    return raws.map((raw) => (raw === null ? null : decodeRecord(raw)));
  }

  /** One read of 2N keys: each profile's record, then its intent. */
  async getStates(profileIds: readonly string[]): Promise<ProfileState[]> {
    if (profileIds.length === 0) return [];
    const keys: string[] = [];
    for (const id of profileIds) keys.push(keyNames.session(id), keyNames.intent(id));
    const raws = await this.storage.get(keys);
    return profileIds.map((_, i) => {
      const record = raws[2 * i] ?? null;
      const intent = raws[2 * i + 1] ?? null;
      return { record: record === null ? null : decodeRecord(record), intent: intent === null ? null : decodeIntent(intent) };
    });
  }

  /**
   * Replaces the record and moves it in the createdBy index: out of the previous creator's set (when
   * another caller minted the record it replaces), into the new creator's. A record already past its
   * retention is removed instead.
   */
  async put(record: SessionRecord, fence: WriteFence, note?: HistoryNote): Promise<void> {
    await this.replace(record, fence, note, () => true);
  }

  /** `put` unless the record it would replace was created after it, or revoked at or after `since`. */
  async putUnlessOvertaken(record: SessionRecord, since: Date, fence: WriteFence, note?: HistoryNote): Promise<boolean> {
    return this.replace(record, fence, note, (previous) => {
      if (previous === null) return true;
      if (previous.createdAt.getTime() > record.createdAt.getTime()) return false;
      return previous.revokedAt === null || previous.revokedAt.getTime() < since.getTime();
    });
  }

  /** One replacement of the profile's record, decided by `replaces` from the record it would replace (read in the same commit). */
  private async replace(record: SessionRecord, fence: WriteFence, note: HistoryNote | undefined, replaces: (previous: SessionRecord | null) => boolean): Promise<boolean> {
    const key = keyNames.session(record.profileId);
    return this.decide(record.profileId, fence, [key], ([old], conditions) => {
      const previous = tryDecode(decodeRecord, old ?? null);
      // Refused, nothing is written (the note's event neither): the record that overtook it stands.
      if (!replaces(previous)) return { result: false };
      const writes: Write[] = [];
      if (previous !== null && previous.createdBy !== record.createdBy) {
        writes.push({ op: "removeMember", key: keyNames.creator(previous.createdBy), member: record.profileId });
      }
      const creator = keyNames.creator(record.createdBy);
      const expireAt = this.expiryOf(record);
      if (expireAt !== undefined && expireAt <= this.clock.now()) {
        writes.push({ op: "delete", key }, { op: "removeMember", key: creator, member: record.profileId });
      } else {
        writes.push({ op: "put", key, value: encodeRecord(record), ...(expireAt === undefined ? {} : { expireAt }) });
        writes.push({ op: "addMember", key: creator, member: record.profileId });
        if (expireAt !== undefined) writes.push({ op: "expireAt", key: creator, at: expireAt, extendOnly: true });
      }
      writes.push(...this.noted(record.profileId, note));
      return { result: true, conditions: [...conditions, { key, equals: old ?? null }], writes };
    });
  }

  /** The first revokedAt and revokedBy stay; the record keeps its expiry. */
  async markRevoked(profileId: string, revokedAt: Date, revokedBy: string, fence: WriteFence, note?: HistoryNote): Promise<SessionRecord | null> {
    const key = keyNames.session(profileId);
    return this.decide(profileId, fence, [key], ([raw], conditions) => {
      // The revoke happened at Deel whatever the ledger knew: its event is recorded either way.
      const events = this.noted(profileId, note);
      const unchanged = (result: SessionRecord | null): Decision<SessionRecord | null> =>
        events.length === 0 ? { result } : { result, conditions: [...conditions, { key, equals: raw ?? null }], writes: events };
      if (raw === null || raw === undefined) return unchanged(null);
      const record = decodeRecord(raw);
      if (record.revokedAt !== null) return unchanged(record);
      const revoked: SessionRecord = { ...record, revokedAt, revokedBy };
      const expireAt = this.expiryOf(revoked);
      return {
        result: revoked,
        conditions: [...conditions, { key, equals: raw }],
        writes: [{ op: "put", key, value: encodeRecord(revoked), ...(expireAt === undefined ? {} : { expireAt }) }, ...events],
      };
    });
  }

  /**
   * Keeps the oldest intent that may still be live; a written one expires after a token's lifetime.
   * Either way the mint goes into its caller's index (`mints-by:<sub>`: profile → this start), which
   * lives as long as the caller's latest mint could matter.
   */
  async beginMint(intent: MintIntent, fence: WriteFence, note?: HistoryNote): Promise<boolean> {
    const key = keyNames.intent(intent.profileId);
    const expireAt = this.clock.now() + WORKER_TOKEN_LIFETIME_MS;
    const index = keyNames.mintsBy(intent.createdBy);
    const indexed: Write[] = [
      { op: "setField", key: index, field: intent.profileId, value: String(intent.startedAt.getTime()) },
      { op: "expireAt", key: index, at: expireAt, extendOnly: true },
    ];
    return this.decide(intent.profileId, fence, [key], ([raw], conditions) => {
      const older = tryDecode(decodeIntent, raw ?? null);
      const own = older === null || !keepsOlder(older.startedAt.getTime(), intent.startedAt.getTime());
      return {
        result: own,
        conditions: [...conditions, { key, equals: raw ?? null }],
        writes: own ? [{ op: "put", key, value: encodeIntent(intent), expireAt }, ...indexed, ...this.intentWritten(intent, note)] : indexed,
      };
    });
  }

  async endMint(profileId: string, fence: WriteFence, upTo?: Date, note?: HistoryNote): Promise<void> {
    const key = keyNames.intent(profileId);
    await this.decide(profileId, fence, [key], ([raw], conditions) => {
      if (raw === null || raw === undefined) return { result: undefined };
      const intent = tryDecode(decodeIntent, raw);
      // A later mint's intent stays; an unreadable one goes.
      if (upTo !== undefined && intent !== null && intent.startedAt.getTime() > upTo.getTime()) return { result: undefined };
      return { result: undefined, conditions: [...conditions, { key, equals: raw }], writes: [{ op: "delete", key }, ...this.intentResolved(profileId, intent, note)] };
    });
  }

  /** Appends events that no ledger write describes (a refusal, a magic link made, a replay of a recorded session). */
  async appendHistory(events: readonly NewHistoryEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.storage.commit([], historyWrites(events, this.clock.now(), this.historyRetentionMs));
  }

  /** Every page asked for, in one round trip (storage `pages`), newest event first. */
  async readHistory(requests: readonly HistoryPageRequest[]): Promise<HistoryPage[]> {
    if (requests.length === 0) return [];
    const now = this.clock.now();
    const items = await this.storage.pages(requests.map((request) => historyPageRead(request, now, this.historyRetentionMs)));
    return requests.map((request, i) => historyPage(items[i] ?? [], request.first));
  }

  /** The creator's set, its records read in batches; a member whose record expired or moved on is skipped. */
  async listByCreator(createdBy: string): Promise<SessionRecord[]> {
    const ids = await this.storage.members(keyNames.creator(createdBy));
    const found: SessionRecord[] = [];
    for (let start = 0; start < ids.length; start += INDEX_BATCH) {
      for (const record of await this.getMany(ids.slice(start, start + INDEX_BATCH))) {
        if (record !== null && record.createdBy === createdBy) found.push(record);
      }
    }
    return found;
  }

  /**
   * The caller's index of mints, each profile's standing intent read in batches: kept when it is the
   * caller's own, or when the caller's latest mint there began while it stood (an older intent the
   * caller's mint left in place stands for that mint too). Intents that can no longer be live are skipped.
   */
  async listIntentsByCreator(createdBy: string): Promise<MintIntent[]> {
    const mints = [...(await this.storage.fields(keyNames.mintsBy(createdBy)))];
    const now = new Date(this.clock.now());
    const found: MintIntent[] = [];
    for (let start = 0; start < mints.length; start += INDEX_BATCH) {
      const batch = mints.slice(start, start + INDEX_BATCH);
      const intents = await this.storage.get(batch.map(([profileId]) => keyNames.intent(profileId)));
      for (const [i, raw] of intents.entries()) {
        const intent = tryDecode(decodeIntent, raw ?? null);
        const began = Number((batch[i] as [string, string])[1]);
        if (intent === null || !intentMayBeLive(intent, now)) continue;
        if (intent.createdBy === createdBy || began >= intent.startedAt.getTime()) found.push(intent);
      }
    }
    return found;
  }

  async getIntents(profileIds: readonly string[]): Promise<Array<MintIntent | null>> {
    if (profileIds.length === 0) return [];
    const raws = await this.storage.get(profileIds.map(keyNames.intent));
    return raws.map((raw) => (raw === null ? null : decodeIntent(raw)));
  }

  async ping(): Promise<void> {
    await this.storage.ping();
  }

  async close(): Promise<void> {
    if (this.ownsStorage) await this.storage.close();
  }

  /** The event a noted write records (none without a note), dated and placed by the note, else now. */
  private noted(profileId: string, note: HistoryNote | undefined): Write[] {
    if (note === undefined) return [];
    const now = this.clock.now();
    return historyWrites([notedEvent(profileId, note, note.action, now)], now, this.historyRetentionMs);
  }

  /**
   * A written intent's events: INTENT_WRITTEN now, and the INTENT_UNKNOWN it turns into if nothing
   * resolves it before reads answer UNKNOWN for it (dated then, so reads show it only from then on).
   */
  private intentWritten(intent: MintIntent, note: HistoryNote | undefined): Write[] {
    const now = this.clock.now();
    const startedAt = intent.startedAt.getTime();
    const unknownAt = startedAt + this.unknownAfterMs;
    const base = { profileId: intent.profileId, actor: intent.createdBy, requestId: note?.requestId ?? "", deelRequestId: null, jobId: null };
    return historyWrites(
      [
        { ...base, action: "INTENT_WRITTEN", outcome: "OK", at: now, id: positionAt(now) },
        { ...base, action: "INTENT_UNKNOWN", outcome: "UNKNOWN", at: unknownAt, id: unknownPosition(startedAt, unknownAt) },
      ],
      now,
      this.historyRetentionMs,
    );
  }

  /**
   * A resolved intent's events: INTENT_RESOLVED (with a note), and its INTENT_UNKNOWN taken back
   * when reads never answered UNKNOWN for it (it resolved in time).
   */
  private intentResolved(profileId: string, intent: MintIntent | null, note: HistoryNote | undefined): Write[] {
    const now = this.clock.now();
    const writes: Write[] = [];
    if (intent !== null) {
      const startedAt = intent.startedAt.getTime();
      const unknownAt = startedAt + this.unknownAfterMs;
      if (now < unknownAt) writes.push({ op: "removeItem", key: historyKey({ kind: "profile", id: profileId }), position: unknownPosition(startedAt, unknownAt) });
    }
    if (note !== undefined) writes.push(...historyWrites([notedEvent(profileId, note, "INTENT_RESOLVED", now)], now, this.historyRetentionMs));
    return writes;
  }

  /** When a record's key expires: its session's expiry plus the retention (never, without one). */
  private expiryOf(record: SessionRecord): number | undefined {
    return this.retentionMs === null ? undefined : record.expiresAt.getTime() + this.retentionMs;
  }

  /**
   * One fenced decision: reads `keys` (and the profile's fence counter, for a lock's fence) in one
   * round trip, refuses a stale fence, lets `rule` decide from the values, and commits on them.
   */
  private async decide<T>(
    profileId: string,
    fence: WriteFence,
    keys: readonly string[],
    rule: (values: ReadonlyArray<string | null>, conditions: readonly Condition[]) => Decision<T>,
  ): Promise<T> {
    if (fence.kind === "token" && fence.profileId !== profileId) {
      throw new TypeError(`a fence of profile ${fence.profileId} cannot guard a write for profile ${profileId}`);
    }
    const fenceKey = fence.kind === "token" ? keyNames.fence(profileId) : null;
    try {
      return await transact(this.storage, async () => {
        const values = await this.storage.get(fenceKey === null ? keys : [...keys, fenceKey]);
        const conditions: Condition[] = [];
        if (fence.kind === "token" && fenceKey !== null) {
          const token = String(fence.token);
          if (values[keys.length] !== token) throw fenced(profileId);
          conditions.push({ key: fenceKey, equals: token });
        }
        return rule(values.slice(0, keys.length), conditions);
      });
    } catch (error) {
      if (error instanceof ContentionError) {
        throw new LedgerError("busy", `Ledger write for profile ${profileId} kept losing to other writers (${error.attempts} attempts)`, { cause: error });
      }
      throw error;
    }
  }
}
