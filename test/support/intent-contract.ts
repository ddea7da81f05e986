import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WORKER_TOKEN_LIFETIME_MS, type MintIntent } from "../../src/sessions/intent.js";
import type { SessionStore } from "../../src/sessions/store.js";
import { aSessionRecord, SEED, type StoreBackend } from "./store-contract.js";

const P1 = "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50";
const P2 = "7a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d";

function anIntent(overrides: Partial<MintIntent> = {}, now = Date.now()): MintIntent {
  return { profileId: P1, createdBy: "caller-1", startedAt: new Date(now), ...overrides };
}

/**
 * The mint-intent part of the ledger contract: every store keeps at most one intent per profile,
 * the oldest unresolved one that may still be live; clears it only up to a given start (or whatever
 * it is, for a revoke); and shows it to every other writer.
 */
export function intentContract(name: string, open: () => Promise<StoreBackend>): void {
  describe(`mint intents: ${name}`, () => {
    let backend: StoreBackend;
    let store: SessionStore;
    beforeEach(async () => {
      backend = await open();
      store = backend.store;
    });
    afterEach(() => backend.close());

    it("lists a caller's intents: its own, and an older one another caller's mint left standing when it began one there", async () => {
      const other = anIntent({ profileId: P2, createdBy: "caller-2" }, backend.now());
      await store.beginMint(other, SEED);
      const own = anIntent({}, backend.now());
      await store.beginMint(own, SEED);
      expect(await store.listIntentsByCreator("caller-1")).toEqual([own]);
      // caller-1 begins a mint on P2 while caller-2's older intent stands: it stands for both.
      expect(await store.beginMint(anIntent({ profileId: P2, startedAt: new Date(backend.now() + 10) }), SEED)).toBe(false);
      const listed = await store.listIntentsByCreator("caller-1");
      expect(listed.map((intent) => intent.profileId).sort()).toEqual([P1, P2].sort());
      expect(await store.listIntentsByCreator("caller-2")).toEqual([other]);
      // A resolved intent is listed no more.
      await store.endMint(P1, SEED);
      expect(await store.listIntentsByCreator("caller-1")).toEqual([other]);
      expect(await store.listIntentsByCreator("nobody")).toEqual([]);
    });

    it("reads back an intent per id, in order, null where there is none", async () => {
      const intent = anIntent({}, backend.now());
      await store.beginMint(intent, SEED);
      expect(await store.getIntents([P2, P1, P2])).toEqual([null, intent, null]);
      expect(await store.getIntents([])).toEqual([]);
    });

    it("keeps intents apart from records: neither shows in the other's reads", async () => {
      await store.beginMint(anIntent({}, backend.now()), SEED);
      expect(await store.getMany([P1])).toEqual([null]);
      await store.put(aSessionRecord({ profileId: P2 }, backend.now()), SEED);
      expect(await store.getIntents([P2])).toEqual([null]);
    });

    it("keeps the oldest unresolved intent: a later mint's beginMint leaves it as it is and answers false", async () => {
      const first = anIntent({}, backend.now());
      const later = anIntent({ createdBy: "caller-2", startedAt: new Date(backend.now() + 1000) });
      expect(await store.beginMint(first, SEED)).toBe(true);
      expect(await store.beginMint(later, SEED)).toBe(false);
      expect(await store.getIntents([P1])).toEqual([first]);
      // The same instant again (a fixed clock): the one already there stays.
      expect(await store.beginMint({ ...first, createdBy: "caller-3" }, SEED)).toBe(false);
      expect(await store.getIntents([P1])).toEqual([first]);
    });

    it("replaces a later intent with an earlier one, and a dead one (a token lifetime old) with a new one", async () => {
      const at = backend.now();
      const later = anIntent({ createdBy: "caller-2", startedAt: new Date(at + 1000) });
      const first = anIntent({}, at);
      await store.beginMint(later, SEED);
      expect(await store.beginMint(first, SEED)).toBe(true);
      expect(await store.getIntents([P1])).toEqual([first]);
      const stillLive = anIntent({ createdBy: "caller-4", startedAt: new Date(at + WORKER_TOKEN_LIFETIME_MS - 1) });
      expect(await store.beginMint(stillLive, SEED)).toBe(false);
      const next = anIntent({ createdBy: "caller-5", startedAt: new Date(at + WORKER_TOKEN_LIFETIME_MS) });
      expect(await store.beginMint(next, SEED)).toBe(true);
      expect(await store.getIntents([P1])).toEqual([next]);
    });

    it("clears the intent only when it began at or before upTo; a later mint's intent stays", async () => {
      const intent = anIntent({}, backend.now());
      await store.beginMint(intent, SEED);
      await store.endMint(P1, SEED, new Date(intent.startedAt.getTime() - 1));
      expect(await store.getIntents([P1])).toEqual([intent]);
      await store.endMint(P1, SEED, intent.startedAt);
      expect(await store.getIntents([P1])).toEqual([null]);
      await store.beginMint(intent, SEED);
      await store.endMint(P1, SEED, new Date(intent.startedAt.getTime() + 5000));
      expect(await store.getIntents([P1])).toEqual([null]);
    });

    it("compares start times as numbers, not as text", async () => {
      // 999 999 999 999 < 1 000 000 000 000, though "999999999999" > "1000000000000" as text.
      const intent = anIntent({ startedAt: new Date(999_999_999_999) });
      await store.beginMint(intent, SEED);
      expect(await store.beginMint(anIntent({ createdBy: "caller-2", startedAt: new Date(1_000_000_000_000) }), SEED)).toBe(false);
      expect(await store.getIntents([P1])).toEqual([intent]);
      await store.endMint(P1, SEED, new Date(1_000_000_000_000));
      expect(await store.getIntents([P1])).toEqual([null]);
    });

    it("clears any intent of the profile when no start time is given (a revoke), and only that profile's", async () => {
      await store.beginMint(anIntent({}, backend.now()), SEED);
      await store.beginMint(anIntent({ profileId: P2 }, backend.now()), SEED);
      await store.endMint(P1, SEED);
      expect(await store.getIntents([P1, P2])).toEqual([null, expect.objectContaining({ profileId: P2 })]);
      await store.endMint(P1, SEED);
      expect(await store.getIntents([P1])).toEqual([null]);
    });

    it("shows an intent to another writer on the same ledger, which can clear it", async () => {
      const intent = anIntent({}, backend.now());
      await store.beginMint(intent, SEED);
      const other = await backend.otherWriter();
      expect(await other.getIntents([P1])).toEqual([intent]);
      await other.endMint(P1, SEED, intent.startedAt);
      expect(await store.getIntents([P1])).toEqual([null]);
    });
  });
}
