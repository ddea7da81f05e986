/**
 * The history of an operation answered at its deadline while its work goes on: the refusal the
 * caller got is recorded only once the work has ended without success; a create or revoke that
 * then succeeds shows only its MINT / REVOKE OK; a magic link finished late shows MAGIC_LINK with
 * the caller's code. `settle()` waits for these late events, so a test reads them deterministically.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { parseMagicLinkTarget } from "../../src/base/redirects.js";
import type { DeelApi } from "../../src/deel/types.js";
import { memoryLedger } from "../../src/sessions/create-store.js";
import { LedgerError } from "../../src/sessions/errors.js";
import { WORKER_TOKEN_LIFETIME_MS } from "../../src/sessions/intent.js";
import { ProfileQueue } from "../../src/sessions/profile-queue.js";
import { WorkerSessionService } from "../../src/sessions/service.js";
import type { SessionStore } from "../../src/sessions/store.js";
import { aManualClock } from "../support/clock.js";
import { aProfileId } from "../support/profiles.js";

const P = aProfileId("1d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6");
const actor = { sub: "caller-1", requestId: "req-1", log: pino({ level: "silent" }) };
const START = Date.parse("2030-01-01T00:00:00Z");
const TIMEOUT_MS = 3000;
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A service over a memory ledger whose chosen write does not answer until the test lets it (`release`), or fails then (`fail`). */
function aSlowWrite(slow: "put" | "markRevoked" | "none", deelOverrides: Partial<DeelApi> = {}) {
  const clock = aManualClock(START);
  const inner = memoryLedger(clock);
  const gate: { held: boolean; release?: () => void; fail?: () => void } = { held: false };
  const holding = <R>(write: () => Promise<R>) =>
    new Promise<R>((resolve, reject) => {
      gate.held = true;
      gate.release = () => void write().then(resolve, reject);
      gate.fail = () => reject(new LedgerError("unavailable", "the store went away"));
    });
  const store: SessionStore = Object.assign(Object.create(inner) as SessionStore, {
    put: (...args: Parameters<SessionStore["put"]>) => (slow === "put" ? holding(() => inner.put(...args)) : inner.put(...args)),
    markRevoked: (...args: Parameters<SessionStore["markRevoked"]>) => (slow === "markRevoked" ? holding(() => inner.markRevoked(...args)) : inner.markRevoked(...args)),
  });
  const deel: DeelApi = {
    createSession: async () => ({ token: "t", expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS), replayed: false, deelRequestId: "deel-mint" }),
    revokeSession: async () => ({ deelRequestId: "deel-revoke" }),
    ...deelOverrides,
  };
  const service = new WorkerSessionService({ deel, store, lock: new ProfileQueue(clock), clock, intentStaleAfterMs: 60_000, timeoutMs: TIMEOUT_MS });
  const events = async () =>
    (await inner.readHistory([{ subject: { kind: "profile", id: P }, first: 100 }]))[0]?.events.map((event) => `${event.action} ${event.outcome}`);
  /** Runs `operation` to its deadline: resolves to the caller's error once the deadline passed. */
  const pastDeadline = async (operation: Promise<unknown>, held: () => boolean) => {
    const answer = operation.then(
      () => "answered",
      (error: unknown) => error,
    );
    while (!held()) await tick();
    clock.advance(TIMEOUT_MS);
    return answer;
  };
  return { service, gate, events, pastDeadline, clock };
}

describe("an operation answered at its deadline while its work goes on", () => {
  it("records only the MINT of a create that succeeds after its caller was refused", async () => {
    const { service, gate, events, pastDeadline } = aSlowWrite("put");
    expect(await pastDeadline(service.create(actor, P, undefined), () => gate.held)).toBeInstanceOf(LedgerError);
    gate.release?.();
    await service.settle();
    expect(await events()).toEqual(["INTENT_RESOLVED OK", "MINT OK", "INTENT_WRITTEN OK"]);
  });

  it("records only the REVOKE of a revoke that succeeds after its caller was refused", async () => {
    const { service, gate, events, pastDeadline } = aSlowWrite("markRevoked");
    await service.create(actor, P, undefined);
    expect(await pastDeadline(service.revoke(actor, P), () => gate.held)).toBeInstanceOf(LedgerError);
    gate.release?.();
    await service.settle();
    expect(await events()).toEqual(["REVOKE OK", "INTENT_RESOLVED OK", "MINT OK", "INTENT_WRITTEN OK"]);
  });

  it("records the refusal of a create only once its work has ended without success, with the caller's code", async () => {
    const { service, gate, events, pastDeadline } = aSlowWrite("put");
    expect(await pastDeadline(service.create(actor, P, undefined), () => gate.held)).toBeInstanceOf(LedgerError);
    await tick();
    expect(await events()).toEqual(["INTENT_WRITTEN OK"]);
    gate.fail?.();
    await service.settle();
    expect((await events())?.[0]).toBe("MINT LedgerError");
  });

  it("records a magic link finished after its deadline as MAGIC_LINK with the caller's code, once it has finished", async () => {
    let finish: (() => void) | undefined;
    const { service, events, pastDeadline } = aSlowWrite("none", {
      createMagicLink: () =>
        new Promise((resolve) => (finish = () => resolve({ url: "https://app.deel.test/magic/1", expiresAt: new Date(START + 600_000), deelRequestId: "deel-link" }))),
    });
    const parsed = parseMagicLinkTarget({ redirectPath: "/contracts/1" }, ["https://app.example.com"]);
    if (!parsed.ok) throw new Error(parsed.problem);
    const error = await pastDeadline(service.magicLink(actor, P, { target: parsed.value, idempotencyKey: undefined }), () => finish !== undefined);
    expect(error).toBeInstanceOf(LedgerError);
    await tick();
    expect(await events()).toEqual(["INTENT_RESOLVED OK", "MINT OK", "INTENT_WRITTEN OK"]);
    finish?.();
    await service.settle();
    expect(await events()).toEqual(["MAGIC_LINK LedgerError", "INTENT_RESOLVED OK", "MINT OK", "INTENT_WRITTEN OK"]);
    const [page] = await service.history([{ subject: { kind: "profile", id: P }, first: 1 }]);
    expect(page?.events[0]).toMatchObject({ action: "MAGIC_LINK", outcome: "LedgerError", deelRequestId: "deel-link" });
  });
});
