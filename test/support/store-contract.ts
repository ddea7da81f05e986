/**
 * One contract for every ledger: the same suite runs against SQLite, a file and :memory: (unit
 * tier) and the Redis and PostgreSQL stores (integration tier). Each backend brings a factory; the few things only
 * some stores can show (a round trip counted, a retention TTL, writers that really race) are
 * capabilities the factory may offer.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unfenced } from "../../src/sessions/fencing.js";
import { statusOf, type SessionRecord } from "../../src/sessions/record.js";
import type { SessionStore } from "../../src/sessions/store.js";

/** The tests write outside any profile's turn (no lock orders them), and say so. */
export const SEED = unfenced("a test writes the ledger directly, outside any profile's turn");

export const HOUR = 3600 * 1000;
export const DAY = 24 * HOUR;

export interface StoreBackend {
  /** The store under test. */
  store: SessionStore;
  /** A second, independent writer on the same ledger (another connection or instance). */
  otherWriter(): Promise<SessionStore>;
  /**
   * The time records are written at, in epoch ms. A fixed instant for an in-process store, so its
   * results never depend on the wall clock; the real clock where the backing store keeps time itself
   * (Redis expires keys by its own clock).
   */
  now(): number;
  /** Backing-store commands issued so far, when the backend can count them. */
  commands?: () => string[];
  /** The one command a batch read issues (Redis: `mget`, the default). */
  batchRead?: string;
  /** Retention: the key's remaining lifetime in ms (-2 when gone), when the backend expires records. */
  remainingTtlMs?: (profileId: string) => Promise<number>;
  /** A store with a custom retention on the same ledger, when the backend has retention. */
  withRetention?: (retentionMs: number) => Promise<SessionStore>;
  retentionMs?: number;
  close(): Promise<void>;
}

/** What only some stores can show; the matching checks are defined for those stores alone. */
export interface StoreCapabilities {
  /** It talks to a server, so a batch read's round trips can be counted. */
  roundTrips: boolean;
  /** It expires records after their retention period. */
  retention: boolean;
  /**
   * Two writers' commands really interleave at the backing store (separate connections to one
   * server), so a race can be provoked and a non-atomic write would lose it. An in-process store runs
   * each call to completion before the next starts: firing calls "at once" there only replays a
   * serial order, so its interleavings are scripted step by step instead (which every store runs).
   */
  concurrentWriters: boolean;
}

/** A session record with test defaults: a fresh profile, minted at `now` by caller-1, valid a day. */
export function aSessionRecord(overrides: Partial<SessionRecord> = {}, now = Date.now()): SessionRecord {
  return {
    profileId: randomUUID(),
    createdAt: new Date(now),
    expiresAt: new Date(now + DAY),
    revokedAt: null,
    createdBy: "caller-1",
    revokedBy: null,
    ...overrides,
  };
}

/** Defines the test only where it applies: not a skip, since there is nothing there to check. */
function onlyIf(applies: boolean): (name: string, body: () => Promise<void>) => void {
  return applies ? (name, body) => it(name, body) : () => undefined;
}

/** Defines the SessionStore contract's suite for one backend. */
export function storeContract(name: string, capabilities: StoreCapabilities, open: () => Promise<StoreBackend>): void {
  describe(`the ${name} ledger`, () => {
    let backend: StoreBackend;
    let store: SessionStore;
    const now = (): number => backend.now();
    const record = (overrides: Partial<SessionRecord> = {}): SessionRecord => aSessionRecord(overrides, now());

    beforeAll(async () => {
      backend = await open();
      store = backend.store;
    });
    afterAll(async () => {
      await backend.close();
    });

    describe("get", () => {
      it("answers null for a profile it never saw", async () => {
        expect(await store.get(randomUUID())).toBeNull();
      });

      it("returns what was put, field for field, to the millisecond", async () => {
        const written = record({ createdAt: new Date("2026-01-02T03:04:05.678Z"), expiresAt: new Date("2126-01-03T03:04:05.679Z") });
        await store.put(written, SEED);
        expect(await store.get(written.profileId)).toEqual(written);
      });

      it("hands out copies: changing a returned record changes nothing stored", async () => {
        const written = record();
        await store.put(written, SEED);
        const read = (await store.get(written.profileId))!;
        const expiresAt = written.expiresAt.getTime();
        read.createdBy = "someone-else";
        read.expiresAt.setTime(0);
        written.createdBy = "mutated-after-put";
        const again = (await store.get(written.profileId))!;
        expect(again.createdBy).toBe("caller-1");
        expect(again.expiresAt.getTime()).toBe(expiresAt);
      });
    });

    describe("getMany (entity resolution)", () => {
      it("answers one entry per id, in the order asked, null where unknown, duplicates included", async () => {
        const a = record();
        const b = record({ createdBy: "caller-b" });
        await store.put(a, SEED);
        await store.put(b, SEED);
        const unknown = randomUUID();
        const result = await store.getMany([b.profileId, unknown, a.profileId, b.profileId]);
        expect(result).toEqual([b, null, a, b]);
      });

      it("answers [] for no ids", async () => {
        expect(await store.getMany([])).toEqual([]);
      });

      onlyIf(capabilities.roundTrips)("reads the whole batch in one round trip", async () => {
        if (backend.commands === undefined) throw new Error(`the ${name} backend must count its commands`);
        const ids = [record(), record(), record()].map((r) => r.profileId);
        const before = backend.commands().length;
        await store.getMany([...ids, randomUUID(), ...ids]);
        const issued = backend.commands().slice(before);
        expect(issued).toEqual([backend.batchRead ?? "mget"]);
      });
    });

    describe("getStates (what a read shows)", () => {
      it("answers each profile's record and intent together, in the order asked, nulls where there is none", async () => {
        const a = record();
        const intent = { profileId: a.profileId, createdBy: "caller-2", startedAt: new Date(now() + 1) };
        await store.put(a, SEED);
        await store.beginMint(intent, SEED);
        const bare = randomUUID();
        expect(await store.getStates([a.profileId, bare, a.profileId])).toEqual([
          { record: a, intent },
          { record: null, intent: null },
          { record: a, intent },
        ]);
        expect(await store.getStates([])).toEqual([]);
      });

      onlyIf(capabilities.roundTrips)("reads records and intents of a batch in one round trip", async () => {
        if (backend.commands === undefined) throw new Error(`the ${name} backend must count its commands`);
        const ids = [record(), record()].map((r) => r.profileId);
        const before = backend.commands().length;
        await store.getStates([...ids, randomUUID()]);
        expect(backend.commands().slice(before)).toEqual([backend.batchRead ?? "mget"]);
      });
    });

    describe("put (create, replace)", () => {
      it("replaces the earlier record for the profile: one record per profile, as Deel keeps one token", async () => {
        const first = record();
        await store.put(first, SEED);
        await store.markRevoked(first.profileId, new Date(now()), "revoker", SEED);
        const second = record({ profileId: first.profileId, createdBy: "caller-2", expiresAt: new Date(now() + 2 * DAY) });
        await store.put(second, SEED);
        const read = await store.get(first.profileId);
        expect(read).toEqual(second);
        expect(statusOf(read!, new Date(now()))).toBe("ACTIVE");
      });
    });

    describe("putUnlessOvertaken (a kept record write, replayed)", () => {
      it("is not made over a record created after it, nor over one revoked at or after its mint began, and then records no event", async () => {
        const began = now();
        const kept = record({ createdAt: new Date(began + 10) });
        const history = async (profileId: string) =>
          (await store.readHistory([{ subject: { kind: "profile", id: profileId }, first: 10 }]))[0]?.events.map((event) => event.action);
        const mint = { actor: "caller-1", requestId: "req-kept", action: "MINT" } as const;

        // A newer mint's record stands.
        const newer = record({ profileId: kept.profileId, createdAt: new Date(began + 20), expiresAt: new Date(began + 2 * DAY), createdBy: "caller-2" });
        await store.put(newer, SEED);
        expect(await store.putUnlessOvertaken(kept, new Date(began), SEED, mint)).toBe(false);
        expect(await store.get(kept.profileId)).toEqual(newer);
        expect(await history(kept.profileId)).toEqual([]);

        // A record revoked since the mint began (the session the intent stood for, revoked) stands.
        const revokedSince = { ...kept, profileId: randomUUID() };
        await store.put({ ...revokedSince, createdAt: new Date(began), revokedAt: new Date(began), revokedBy: "revoker" }, SEED);
        expect(await store.putUnlessOvertaken(revokedSince, new Date(began), SEED, mint)).toBe(false);
        expect((await store.get(revokedSince.profileId))?.revokedAt).toEqual(new Date(began));

        // An older record, or one revoked before the mint began, is replaced, with the note's event.
        const older = { ...kept, profileId: randomUUID() };
        await store.put({ ...older, createdAt: new Date(began - 20), revokedAt: new Date(began - 1), revokedBy: "revoker" }, SEED);
        expect(await store.putUnlessOvertaken(older, new Date(began), SEED, mint)).toBe(true);
        expect(await store.get(older.profileId)).toEqual(older);
        expect(await history(older.profileId)).toEqual(["MINT"]);
        // No record at all, or the same record again (a write that landed unseen): written.
        const fresh = { ...kept, profileId: randomUUID() };
        expect(await store.putUnlessOvertaken(fresh, new Date(began), SEED)).toBe(true);
        expect(await store.putUnlessOvertaken(fresh, new Date(began), SEED)).toBe(true);
        expect(await store.get(fresh.profileId)).toEqual(fresh);
      });
    });

    describe("markRevoked", () => {
      it("answers null and writes nothing for a profile it never saw", async () => {
        const id = randomUUID();
        expect(await store.markRevoked(id, new Date(now()), "revoker", SEED)).toBeNull();
        expect(await store.get(id)).toBeNull();
      });

      it("marks the record REVOKED and returns it as it now stands", async () => {
        const written = record();
        await store.put(written, SEED);
        const at = new Date(now() + 5);
        const revoked = await store.markRevoked(written.profileId, at, "revoker-1", SEED);
        expect(revoked).toEqual({ ...written, revokedAt: at, revokedBy: "revoker-1" });
        expect(await store.get(written.profileId)).toEqual(revoked);
        expect(statusOf(revoked!, new Date(now()))).toBe("REVOKED");
      });

      it("is idempotent: a second revoke keeps the first revokedAt and revokedBy", async () => {
        const written = record();
        await store.put(written, SEED);
        const first = await store.markRevoked(written.profileId, new Date(1_800_000_000_000), "first", SEED);
        const second = await store.markRevoked(written.profileId, new Date(1_800_000_999_000), "second", SEED);
        expect(second).toEqual(first);
        expect(second).toMatchObject({ revokedAt: new Date(1_800_000_000_000), revokedBy: "first" });
      });
    });

    describe("expiry and retention", () => {
      it("keeps an expired session readable, and its status is derived: EXPIRED, or REVOKED once revoked", async () => {
        const expired = record({ createdAt: new Date(now() - DAY - HOUR), expiresAt: new Date(now() - HOUR) });
        await store.put(expired, SEED);
        const read = await store.get(expired.profileId);
        expect(read).toEqual(expired);
        expect(statusOf(read!, new Date(now()))).toBe("EXPIRED");
        const revoked = await store.markRevoked(expired.profileId, new Date(now()), "revoker", SEED);
        expect(statusOf(revoked!, new Date(now()))).toBe("REVOKED");
      });

      onlyIf(capabilities.retention)("keeps a record for its session's lifetime plus the retention period, revoked or not", async () => {
        if (backend.remainingTtlMs === undefined || backend.retentionMs === undefined) {
          throw new Error(`the ${name} backend must report TTLs and its retention`);
        }
        const written = record({ expiresAt: new Date(now() + 2 * HOUR) });
        await store.put(written, SEED);
        const expected = written.expiresAt.getTime() + backend.retentionMs - now();
        const ttl = await backend.remainingTtlMs(written.profileId);
        expect(Math.abs(ttl - expected)).toBeLessThan(2000);
        // Revoking does not shorten or extend the audit trail.
        await store.markRevoked(written.profileId, new Date(now()), "revoker", SEED);
        expect(Math.abs((await backend.remainingTtlMs(written.profileId)) - expected)).toBeLessThan(2000);
      });

      onlyIf(capabilities.retention)("forgets a record once its retention has passed", async () => {
        if (backend.withRetention === undefined || backend.remainingTtlMs === undefined) {
          throw new Error(`the ${name} backend must offer a custom retention`);
        }
        const shortLived = await backend.withRetention(300);
        const written = record({ expiresAt: new Date(now() - 100) });
        await shortLived.put(written, SEED);
        expect(await store.get(written.profileId)).toEqual(written);
        await new Promise((resolve) => setTimeout(resolve, 400));
        expect(await store.get(written.profileId)).toBeNull();
        expect(await backend.remainingTtlMs(written.profileId)).toBe(-2);
      });
    });

    // Each step waits for the previous one, so the order is the script's for every store. What a
    // wrong store gets wrong here: a writer reading its own stale copy, a revoke applied to the record
    // a put had replaced, a revoke's first-wins rule leaking from a replaced record into its successor.
    describe("two writers, one step at a time", () => {
      it("each reads every record the other wrote, in the order asked, duplicates and unknowns included", async () => {
        const other = await backend.otherWriter();
        const writers = [store, other];
        const records = Array.from({ length: 12 }, (_, i) => record({ createdBy: `writer-${i % 2}` }));
        for (const [i, written] of records.entries()) await writers[i % 2]!.put(written, SEED);
        const asked = [...records].reverse().map((r) => r.profileId);
        const unknown = randomUUID();
        const ids = [asked[3]!, unknown, ...asked, asked[0]!, asked[3]!];
        const expected = ids.map((id) => records.find((r) => r.profileId === id) ?? null);
        for (const reader of writers) {
          expect(await reader.getMany(ids)).toEqual(expected);
          for (const written of records) expect(await reader.get(written.profileId)).toEqual(written);
        }
      });

      it("revokes the record as it now stands, never the older one a put by the other writer replaced", async () => {
        const other = await backend.otherWriter();
        const older = record({ createdBy: "older" });
        await store.put(older, SEED);
        // Both writers have read the older record; a store that kept it would revoke (and restore) it.
        expect(await store.get(older.profileId)).toEqual(older);
        expect(await other.get(older.profileId)).toEqual(older);
        const newer = record({ profileId: older.profileId, createdBy: "newer", expiresAt: new Date(now() + 2 * DAY) });
        await other.put(newer, SEED);
        const at = new Date(now() + 7);
        const revoked = await store.markRevoked(older.profileId, at, "revoker", SEED);
        expect(revoked).toEqual({ ...newer, revokedAt: at, revokedBy: "revoker" });
        expect(await other.get(older.profileId)).toEqual(revoked);
        expect(await other.getMany([older.profileId, older.profileId])).toEqual([revoked, revoked]);
      });

      it("lets a put replace a revoked record, and gives the new record a revoke of its own, first one winning", async () => {
        const other = await backend.otherWriter();
        const first = record({ createdBy: "first-minter" });
        const [t1, t2, t3] = [1, 2, 3].map((ms) => new Date(first.createdAt.getTime() + ms)) as [Date, Date, Date];
        await store.put(first, SEED);
        const firstRevoke = await other.markRevoked(first.profileId, t1, "first-revoker", SEED);
        expect(firstRevoke).toEqual({ ...first, revokedAt: t1, revokedBy: "first-revoker" });
        expect(await store.get(first.profileId)).toEqual(firstRevoke);

        const second = record({ profileId: first.profileId, createdBy: "second-minter", expiresAt: new Date(now() + 2 * DAY) });
        await store.put(second, SEED);
        // The revoke of the replaced record does not carry over.
        expect(await other.get(first.profileId)).toEqual(second);
        expect(statusOf((await other.get(first.profileId))!, new Date(now()))).toBe("ACTIVE");

        const secondRevoke = await other.markRevoked(first.profileId, t2, "second-revoker", SEED);
        expect(secondRevoke).toEqual({ ...second, revokedAt: t2, revokedBy: "second-revoker" });
        // A later revoke through the first writer changes nothing and answers the standing record.
        expect(await store.markRevoked(first.profileId, t3, "third-revoker", SEED)).toEqual(secondRevoke);
        expect(await store.get(first.profileId)).toEqual(secondRevoke);
        expect(await other.get(first.profileId)).toEqual(secondRevoke);
      });
    });

    if (capabilities.concurrentWriters) {
      describe("concurrent writers", () => {
        it("loses no write when two writers put many records at once", async () => {
          const other = await backend.otherWriter();
          const records = Array.from({ length: 60 }, (_, i) => record({ createdBy: `writer-${i % 2}` }));
          await Promise.all(records.map((r, i) => (i % 2 === 0 ? store : other).put(r, SEED)));
          expect(await store.getMany(records.map((r) => r.profileId))).toEqual(records);
          expect(await other.getMany(records.map((r) => r.profileId))).toEqual(records);
        });

        it("lets exactly one of many concurrent revokes win, and every caller sees the winner", async () => {
          const other = await backend.otherWriter();
          const written = record();
          await store.put(written, SEED);
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : other).markRevoked(written.profileId, new Date(now() + i), `revoker-${i}`, SEED)),
          );
          const winners = new Set(results.map((r) => `${r?.revokedBy}@${r?.revokedAt?.toISOString()}`));
          expect(winners.size).toBe(1);
          expect(await store.get(written.profileId)).toEqual(results[0]);
        });

        it("writes exactly one of many intents begun at once for one profile, and keeps it", async () => {
          const other = await backend.otherWriter();
          const profileId = randomUUID();
          const at = now();
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              (i % 2 === 0 ? store : other).beginMint({ profileId, createdBy: `minter-${i}`, startedAt: new Date(at) }, SEED),
            ),
          );
          expect(results.filter(Boolean)).toHaveLength(1);
          const winner = results.indexOf(true);
          expect(await other.getIntents([profileId])).toEqual([{ profileId, createdBy: `minter-${winner}`, startedAt: new Date(at) }]);
        });

        it("keeps the createdBy index exact while writers race to replace one record", async () => {
          const other = await backend.otherWriter();
          const profileId = randomUUID();
          const creators = Array.from({ length: 10 }, () => `racer-${randomUUID().slice(0, 8)}`);
          await Promise.all(creators.map((createdBy, i) => (i % 2 === 0 ? store : other).put(record({ profileId, createdBy }), SEED)));
          const standing = (await store.get(profileId))!;
          for (const createdBy of creators) {
            const listed = await other.listByCreator(createdBy);
            expect(listed).toEqual(createdBy === standing.createdBy ? [standing] : []);
          }
        });

        it("never shows a torn record while another writer replaces it", async () => {
          const other = await backend.otherWriter();
          const profileId = randomUUID();
          const versions = Array.from({ length: 20 }, (_, i) =>
            record({ profileId, createdBy: `v${i}`, expiresAt: new Date(Date.UTC(2100, 0, 1) + i * 1000) }),
          );
          const reads: Array<SessionRecord | null> = [];
          await Promise.all([
            (async () => {
              for (const version of versions) await other.put(version, SEED);
            })(),
            (async () => {
              for (let i = 0; i < 20; i += 1) reads.push(await store.get(profileId));
            })(),
          ]);
          for (const read of reads) {
            if (read === null) continue;
            const index = Number(read.createdBy.slice(1));
            expect(read).toEqual(versions[index]);
          }
          expect(await store.get(profileId)).toEqual(versions[19]);
        });

        it("ends a revoke racing a replacing put as one of the two orders would: never the replaced record, never without the revoke", async () => {
          const other = await backend.otherWriter();
          for (let round = 0; round < 30; round += 1) {
            const older = record({ createdBy: "older" });
            await store.put(older, SEED);
            const newer = record({ profileId: older.profileId, createdBy: "newer", expiresAt: new Date(now() + 2 * DAY) });
            const at = new Date(now() + round);
            // Which call is sent first alternates, so that both orders get their chance at the server.
            const putting = (): Promise<void> => other.put(newer, SEED);
            const revoking = (): Promise<SessionRecord | null> => store.markRevoked(older.profileId, at, "revoker", SEED);
            const revoked =
              round % 2 === 0
                ? (await Promise.all([revoking(), putting()]))[0]
                : (await Promise.all([putting(), revoking()]))[1];
            const standing = await store.get(older.profileId);
            if (revoked?.createdBy === "newer") {
              // The put landed first: the revoke applied to the newer record, and it stays revoked.
              expect(revoked).toEqual({ ...newer, revokedAt: at, revokedBy: "revoker" });
              expect(standing).toEqual(revoked);
            } else {
              // The revoke landed first: it revoked the older record, which the put then replaced.
              expect(revoked).toEqual({ ...older, revokedAt: at, revokedBy: "revoker" });
              expect(standing).toEqual(newer);
            }
            expect(await other.get(older.profileId)).toEqual(standing);
          }
        });
      });
    }

    it("answers ping while it can serve", async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
