/**
 * Mint intents: the ledger knows a token may exist at Deel from before Deel is asked until the
 * answer is recorded, so a process that dies between Deel's 201 and the ledger write leaves an
 * UNKNOWN session behind instead of a live token nobody can see.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { DeelError } from "../../src/deel/errors.js";
import type { DeelApi, MintedSession } from "../../src/deel/types.js";
import { WORKER_TOKEN_LIFETIME_MS } from "../../src/sessions/intent.js";
import { memoryLedger } from "../../src/sessions/create-store.js";
import { WorkerSessionService } from "../../src/sessions/service.js";
import { aClock } from "../support/clock.js";
import { aProfileId } from "../support/profiles.js";

const P = aProfileId("6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50");
const actor = { sub: "caller-1", requestId: "req-1", log: pino({ level: "silent" }) };
const START = Date.parse("2030-01-01T00:00:00Z");
const STALE_MS = 9_000;


function aService(deel: Partial<DeelApi>, clock = aClock(START)) {
  const store = memoryLedger(clock.clock);
  const full: DeelApi = {
    createSession: async () => ({ token: "t", expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS), replayed: false }),
    revokeSession: async () => ({}),
    ...deel,
  };
  const service = new WorkerSessionService({ deel: full, store, clock: clock.clock, intentStaleAfterMs: STALE_MS });
  return { service, store, clock };
}

describe("a mint intent", () => {
  it("is in the ledger while Deel is being asked, and gone once the session is recorded", async () => {
    let seenDuringCall: unknown;
    const { service, store } = aService({
      createSession: async (): Promise<MintedSession> => {
        seenDuringCall = (await store.getIntents([P]))[0];
        return { token: "t", expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS), replayed: false };
      },
    });
    await service.create(actor, P, undefined);
    expect(seenDuringCall).toEqual({ profileId: P, createdBy: "caller-1", startedAt: new Date(START) });
    expect(await store.getIntents([P])).toEqual([null]);
    expect((await service.read([P]))[0]?.status).toBe("ACTIVE");
  });

  it.each(["bad_request", "not_found", "credentials", "rate_limited"] as const)("is cleared when Deel answers %s: no token can exist", async (kind) => {
    const { service, store } = aService({ createSession: () => Promise.reject(new DeelError(kind, "refused")) });
    await expect(service.create(actor, P, undefined)).rejects.toBeInstanceOf(DeelError);
    expect(await store.getIntents([P])).toEqual([null]);
  });

  it("stays when Deel's answer never came, and reads answer UNKNOWN once no create can still be waiting", async () => {
    const { service, clock } = aService({ createSession: () => Promise.reject(new DeelError("unavailable", "timed out")) });
    await expect(service.create(actor, P, undefined)).rejects.toBeInstanceOf(DeelError);
    // Within the deadline the create could still be in flight: nothing is known yet.
    clock.advance(STALE_MS - 1);
    expect(await service.read([P])).toEqual([null]);
    clock.advance(1);
    const [entry] = await service.read([P]);
    expect(entry).toEqual({
      status: "UNKNOWN",
      record: {
        profileId: P,
        createdAt: new Date(START),
        expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS),
        revokedAt: null,
        createdBy: "caller-1",
        revokedBy: null,
      },
    });
  });

  it("turns an older ACTIVE session into UNKNOWN: the token Deel may have minted replaced it", async () => {
    let fail = false;
    const { service, clock } = aService({
      createSession: async () => {
        if (fail) throw new DeelError("bad_response", "garbled");
        return { token: "t", expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS), replayed: false };
      },
    });
    await service.create(actor, P, undefined);
    fail = true;
    clock.advance(1000);
    await expect(service.create({ ...actor, sub: "caller-2" }, P, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    expect((await service.read([P]))[0]).toMatchObject({ status: "UNKNOWN", record: { createdBy: "caller-2" } });
  });

  it("is resolved by a revoke, which records the session it stood for as REVOKED", async () => {
    const { service, store, clock } = aService({ createSession: () => Promise.reject(new DeelError("unavailable", "cut off")) });
    await expect(service.create(actor, P, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    const revoked = await service.revoke({ ...actor, sub: "operator" }, P);
    expect(revoked.session).toMatchObject({ profileId: P, createdBy: "caller-1", revokedBy: "operator", revokedAt: new Date(START + STALE_MS) });
    expect(await store.getIntents([P])).toEqual([null]);
    expect((await service.read([P]))[0]?.status).toBe("REVOKED");
  });

  it("is resolved by a later create that succeeds", async () => {
    let fail = true;
    const { service, clock } = aService({
      createSession: async () => {
        if (fail) throw new DeelError("unavailable", "cut off");
        return { token: "t", expiresAt: new Date(START + 2 * WORKER_TOKEN_LIFETIME_MS), replayed: false };
      },
    });
    await expect(service.create(actor, P, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    expect((await service.read([P]))[0]?.status).toBe("UNKNOWN");
    fail = false;
    await service.create(actor, P, undefined);
    expect((await service.read([P]))[0]?.status).toBe("ACTIVE");
  });
});
