/**
 * How the service records a mint that Deel *replayed* (same Idempotency-Key): the case retries make
 * common, when an attempt's answer is lost after Deel minted and the retry gets the replay.
 */
import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import type { CallOptions, DeelApi, MintedSession } from "../../src/deel/types.js";
import { memoryLedger } from "../../src/sessions/create-store.js";
import type { Ledger } from "../../src/sessions/ledger.js";
import { intentStaleAfterMs } from "../../src/sessions/intent.js";
import { SEED } from "../support/store-contract.js";
import { SupersededSessionError } from "../../src/sessions/errors.js";
import { WorkerSessionService } from "../../src/sessions/service.js";
import { aProfileId, anIdempotencyKey } from "../support/profiles.js";

const P = aProfileId("6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50");
const actor = { sub: "caller-1", requestId: "req-1", log: pino({ level: "silent" }) };

function deelAnswering(minted: MintedSession): DeelApi {
  return {
    createSession: async () => minted,
    revokeSession: async () => ({}),
  };
}

async function ledgerWith(expiresAt: Date, revoked = false): Promise<Ledger> {
  const store = memoryLedger();
  await store.put({
    profileId: P,
    createdAt: new Date(expiresAt.getTime() - 86_400_000),
    expiresAt,
    revokedAt: revoked ? new Date() : null,
    createdBy: "earlier",
    revokedBy: revoked ? "earlier" : null,
  }, SEED);
  return store;
}

describe("a replayed mint", () => {
  it("is recorded when it was minted after the ledger's session (a retry's replay of its own first attempt)", async () => {
    const store = await ledgerWith(new Date("2030-01-01T00:00:00Z"), true);
    const later = new Date("2030-01-01T00:05:00Z");
    const service = new WorkerSessionService({ deel: deelAnswering({ token: "t2", expiresAt: later, replayed: true }), store, intentStaleAfterMs: intentStaleAfterMs(8000) });
    const created = await service.create(actor, P, undefined);
    expect(created.session).toMatchObject({ expiresAt: later, revokedAt: null, createdBy: "caller-1" });
    expect(await store.get(P)).toMatchObject({ expiresAt: later, revokedAt: null });
  });

  it("never overwrites a newer ledger record, nor a known one", async () => {
    const newer = new Date("2030-01-02T00:00:00Z");
    const store = await ledgerWith(newer, true);
    const older = new Date("2030-01-01T00:00:00Z");
    const service = new WorkerSessionService({ deel: deelAnswering({ token: "t1", expiresAt: older, replayed: true }), store, intentStaleAfterMs: intentStaleAfterMs(8000) });
    // The replayed token was replaced at Deel: it is dead, and is not handed out.
    await expect(service.create(actor, P, anIdempotencyKey("key"))).rejects.toBeInstanceOf(SupersededSessionError);
    expect(await store.get(P)).toMatchObject({ expiresAt: newer, createdBy: "earlier", revokedBy: "earlier" });

    const same = new WorkerSessionService({ deel: deelAnswering({ token: "t3", expiresAt: newer, replayed: true }), store, intentStaleAfterMs: intentStaleAfterMs(8000) });
    const replayed = await same.create(actor, P, anIdempotencyKey("key"));
    expect(replayed.session).toMatchObject({ createdBy: "earlier", revokedBy: "earlier" });
    expect(replayed.session.revokedAt).not.toBeNull();
  });

  it("passes when the mutation began, so that the Deel deadline counts time queued behind the profile", async () => {
    const began = Date.parse("2026-03-02T10:20:30Z");
    vi.useFakeTimers({ toFake: ["Date"], now: began });
    try {
      const seen: CallOptions[] = [];
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const deel: DeelApi = {
        createSession: async (_profileId, _key, options) => {
          seen.push(options ?? {});
          // The first call holds the profile until released; the second waits behind it.
          if (seen.length === 1) await held;
          return { token: `t${seen.length}`, expiresAt: new Date("2030-01-01T00:00:00Z"), replayed: false };
        },
        revokeSession: async () => ({}),
      };
      const service = new WorkerSessionService({ deel, store: memoryLedger(), intentStaleAfterMs: intentStaleAfterMs(8000) });
      const first = service.create(actor, P, undefined);
      vi.setSystemTime(began + 1_000);
      const second = service.create({ ...actor, requestId: "req-2" }, P, undefined);
      vi.setSystemTime(began + 6_000);
      release();
      await Promise.all([first, second]);
      expect(seen.map((options) => [options.requestId, options.startedAt])).toEqual([
        ["req-1", began],
        ["req-2", began + 1_000],
      ]);
    } finally {
      vi.useRealTimers();
    }
  });
});
