/**
 * The session history's contract over the ledger (sessions/ledger.ts, sessions/history.ts), for
 * every backend: events ride in the commit of the ledger write they describe (a stale fence writes
 * neither), a lost mint's INTENT_UNKNOWN shows exactly when reads would answer UNKNOWN and is taken
 * back by a mint resolved in time, a job's events are its own history too, many pages are one
 * storage read, and retention hides and prunes old events. Each backend brings a fresh storage on
 * the test's clock (Redis keeps time itself: its keys outlive the test's clock, which the pruning
 * by position does not need).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Clock } from "../../src/base/clock.js";
import { keyNames } from "../../src/redis/keys.js";
import type { TokenFence } from "../../src/sessions/fencing.js";
import { historyKey, stampNote, type HistoryNote } from "../../src/sessions/history.js";
import { Ledger } from "../../src/sessions/ledger.js";
import type { Storage } from "../../src/storage/storage.js";
import { aClock } from "./clock.js";
import { aSessionRecord, DAY, SEED } from "./store-contract.js";

export interface HistoryBackend {
  storage: Storage;
  close(): Promise<void>;
}

const UNKNOWN_AFTER_MS = 9_000;
const note = (action: HistoryNote["action"], extra: Partial<HistoryNote> = {}): HistoryNote => ({ actor: "operator", requestId: "req-1", action, ...extra });

export function historyContract(name: string, open: (clock: Clock) => Promise<HistoryBackend>): void {
  describe(`the session history on ${name}`, () => {
    async function withLedger(body: (ctx: { ledger: Ledger; storage: Storage; pages: () => number; advance: (ms: number) => number; now: () => number }) => Promise<void>) {
      const time = aClock(Date.now());
      const backend = await open(time.clock);
      let pages = 0;
      const counted: Storage = Object.assign(Object.create(backend.storage) as Storage, {
        pages: (requests: Parameters<Storage["pages"]>[0]) => {
          pages += 1;
          return backend.storage.pages(requests);
        },
      });
      const ledger = new Ledger(counted, { retentionMs: 7 * DAY, historyRetentionMs: DAY, unknownAfterMs: UNKNOWN_AFTER_MS, clock: time.clock, ownsStorage: false });
      try {
        await body({ ledger, storage: backend.storage, pages: () => pages, advance: time.advance, now: () => time.now().getTime() });
      } finally {
        await backend.close();
      }
    }
    const actions = async (ledger: Ledger, profileId: string) =>
      (await ledger.readHistory([{ subject: { kind: "profile", id: profileId }, first: 100 }]))[0]?.events.map((event) => event.action);

    it("records a noted write's event in its own commit, and a write refused by a stale fence records nothing", () =>
      withLedger(async ({ ledger, storage }) => {
        const profileId = randomUUID();
        await storage.commit([], [{ op: "put", key: keyNames.fence(profileId), value: "2" }]);
        const fence = (token: number): TokenFence => ({ kind: "token", profileId, token });
        await expect(ledger.put(aSessionRecord({ profileId }), fence(1), note("MINT"))).rejects.toMatchObject({ kind: "fenced" });
        await expect(ledger.markRevoked(profileId, new Date(), "operator", fence(1), note("REVOKE"))).rejects.toMatchObject({ kind: "fenced" });
        expect(await actions(ledger, profileId)).toEqual([]);
        await ledger.put(aSessionRecord({ profileId }), fence(2), note("MINT", { deelRequestId: "deel-1" }));
        // A revoke is told even when the ledger knew the session revoked already.
        await ledger.markRevoked(profileId, new Date(), "operator", fence(2), note("REVOKE"));
        await ledger.markRevoked(profileId, new Date(), "operator", fence(2), note("REVOKE"));
        const [page] = await ledger.readHistory([{ subject: { kind: "profile", id: profileId }, first: 100 }]);
        expect(page?.events.map((event) => event.action)).toEqual(["REVOKE", "REVOKE", "MINT"]);
        expect(page?.events[2]).toMatchObject({ profileId, actor: "operator", requestId: "req-1", deelRequestId: "deel-1", jobId: null, outcome: "OK" });
      }));

    it("dates a stamped note's event when it happened, and a write made again (a kept write replayed) replaces it instead of adding one", () =>
      withLedger(async ({ ledger, advance, now }) => {
        const profileId = randomUUID();
        const mintedAt = now();
        await ledger.beginMint({ profileId, createdBy: "operator", startedAt: new Date(mintedAt) }, SEED, note("INTENT_WRITTEN"));
        const minted = stampNote(note("MINT", { deelRequestId: "deel-1" }), mintedAt);
        const resolved = stampNote(note("INTENT_RESOLVED"), mintedAt);
        advance(1_000);
        const revokedAt = now();
        const revoked = stampNote(note("REVOKE"), revokedAt);
        advance(60_000);
        // Replayed late, and twice: each write made again with the same notes.
        for (let replay = 0; replay < 2; replay += 1) {
          await ledger.put(aSessionRecord({ profileId }), SEED, minted);
          await ledger.endMint(profileId, SEED, undefined, resolved);
          await ledger.markRevoked(profileId, new Date(revokedAt), "operator", SEED, revoked);
        }
        const [page] = await ledger.readHistory([{ subject: { kind: "profile", id: profileId }, first: 100 }]);
        expect(page?.events.map((event) => [event.action, event.at.getTime()])).toEqual([
          ["INTENT_UNKNOWN", mintedAt + UNKNOWN_AFTER_MS],
          ["REVOKE", revokedAt],
          ["INTENT_RESOLVED", mintedAt],
          ["MINT", mintedAt],
          ["INTENT_WRITTEN", mintedAt],
        ]);
        expect(page?.events.find((event) => event.action === "MINT")).toMatchObject({ id: minted.id, deelRequestId: "deel-1" });
      }));

    it("shows a lost mint's INTENT_UNKNOWN once reads would answer UNKNOWN, and a mint resolved in time never does", () =>
      withLedger(async ({ ledger, advance, now }) => {
        const lost = randomUUID();
        const resolved = randomUUID();
        await ledger.beginMint({ profileId: lost, createdBy: "operator", startedAt: new Date(now()) }, SEED, note("INTENT_WRITTEN"));
        await ledger.beginMint({ profileId: resolved, createdBy: "operator", startedAt: new Date(now()) }, SEED, note("INTENT_WRITTEN"));
        expect(await actions(ledger, lost)).toEqual(["INTENT_WRITTEN"]);
        advance(UNKNOWN_AFTER_MS - 1);
        await ledger.endMint(resolved, SEED, undefined, note("INTENT_RESOLVED"));
        expect(await actions(ledger, lost)).toEqual(["INTENT_WRITTEN"]);
        advance(1);
        expect(await actions(ledger, lost)).toEqual(["INTENT_UNKNOWN", "INTENT_WRITTEN"]);
        expect(await actions(ledger, resolved)).toEqual(["INTENT_RESOLVED", "INTENT_WRITTEN"]);
        // Resolved late (a revoke of the UNKNOWN), the INTENT_UNKNOWN stays: reads did answer UNKNOWN.
        advance(1_000);
        await ledger.endMint(lost, SEED, undefined, note("INTENT_RESOLVED"));
        expect(await actions(ledger, lost)).toEqual(["INTENT_RESOLVED", "INTENT_UNKNOWN", "INTENT_WRITTEN"]);
        advance(60_000);
        expect(await actions(ledger, resolved)).toEqual(["INTENT_RESOLVED", "INTENT_WRITTEN"]);
      }));

    it("keeps a job's events in the job's history too, and reads many pages in one storage read", () =>
      withLedger(async ({ ledger, pages, now }) => {
        const jobId = randomUUID();
        const profiles = [randomUUID(), randomUUID(), randomUUID()];
        for (const profileId of profiles) {
          await ledger.put(aSessionRecord({ profileId }), SEED, note("MINT"));
          await ledger.markRevoked(profileId, new Date(), "operator", SEED, note("JOB_REVOKE", { jobId, requestId: `revocation-job:${jobId}` }));
        }
        await ledger.appendHistory([{ profileId: profiles[0] as string, action: "JOB_REVOKE", outcome: "RATE_LIMITED", actor: "operator", requestId: "r", deelRequestId: null, jobId, at: now() }]);
        const before = pages();
        const read = await ledger.readHistory([
          { subject: { kind: "job", id: jobId }, first: 2 },
          ...profiles.map((id) => ({ subject: { kind: "profile" as const, id }, first: 10 })),
          { subject: { kind: "job", id: randomUUID() }, first: 10 },
        ]);
        expect(pages() - before).toBe(1);
        expect(read[0]?.events.map((event) => `${event.action} ${event.outcome} ${event.jobId === jobId}`)).toEqual(["JOB_REVOKE RATE_LIMITED true", "JOB_REVOKE OK true"]);
        expect(read[0]?.hasNextPage).toBe(true);
        expect(read.slice(1, 4).map((page) => page.events.map((event) => event.action))).toEqual([
          ["JOB_REVOKE", "JOB_REVOKE", "MINT"],
          ["JOB_REVOKE", "MINT"],
          ["JOB_REVOKE", "MINT"],
        ]);
        expect(read[4]).toEqual({ events: [], hasNextPage: false });
        // Page by page, below each page's last event.
        const [rest] = await ledger.readHistory([{ subject: { kind: "job", id: jobId }, first: 10, after: read[0]?.events[1]?.id }]);
        expect(rest?.events.map((event) => event.profileId)).toEqual([profiles[1], profiles[0]]);
      }));

    it("hides events past the retention, and prunes them with the next event", () =>
      withLedger(async ({ ledger, storage, advance, now }) => {
        const profileId = randomUUID();
        await ledger.put(aSessionRecord({ profileId }), SEED, note("MINT"));
        advance(DAY - 1_000);
        await ledger.markRevoked(profileId, new Date(), "operator", SEED, note("REVOKE"));
        expect(await actions(ledger, profileId)).toEqual(["REVOKE", "MINT"]);
        advance(2_000);
        expect(await actions(ledger, profileId)).toEqual(["REVOKE"]);
        await ledger.appendHistory([{ profileId, action: "MAGIC_LINK", outcome: "OK", actor: "operator", requestId: "r", deelRequestId: null, jobId: null, at: now() }]);
        // Gone from the storage too, not only from reads.
        const [raw] = await storage.pages([{ key: historyKey({ kind: "profile", id: profileId }), limit: 10 }]);
        expect(raw?.map((item) => (JSON.parse(item.value) as { a: string }).a)).toEqual(["MAGIC_LINK", "REVOKE"]);
        advance(DAY - 1);
        expect(await actions(ledger, profileId)).toEqual(["MAGIC_LINK"]);
      }));
  });
}
