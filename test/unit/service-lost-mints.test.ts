/**
 * Which failed or replayed creates resolve a mint intent, and which must leave it (and the UNKNOWN
 * it turns into) alone. The Deel side is the real stack (DeelClient over undici's MockAgent,
 * wrapped in the real ResilientDeel) where the question is what Deel was asked and answered, and a
 * fake that throws DeelErrors with `mayHaveMinted` set where the question is the ledger's rules.
 * No socket is opened and no real time is waited for.
 */
import pino from "pino";
import { MockAgent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../../src/base/clock.js";
import { DeelClient } from "../../src/deel/client.js";
import { DeelError } from "../../src/deel/errors.js";
import { LocalBudget } from "../../src/deel/local-budget.js";
import { ResilientDeel, type ResilientDeelOptions } from "../../src/deel/resilient.js";
import type { DeelApi, MintedSession } from "../../src/deel/types.js";
import { WORKER_TOKEN_LIFETIME_MS } from "../../src/sessions/intent.js";
import { memoryLedger } from "../../src/sessions/create-store.js";
import { SupersededSessionError } from "../../src/sessions/errors.js";
import { WorkerSessionService } from "../../src/sessions/service.js";
import { aClock } from "../support/clock.js";
import { aProfileId, anIdempotencyKey } from "../support/profiles.js";

const P1 = aProfileId("6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50");
const P2 = aProfileId("7a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d");
const ORIGIN = "https://deel.example";
const SESSION_PATH = "/rest/v2/workers/session";
const actor = { sub: "caller-1", requestId: "req-1", log: pino({ level: "silent" }) };
const START = Date.parse("2030-01-01T00:00:00Z");
const STALE_MS = 9_000;


/**
 * The resilience layer's clock: the real "now" (the HTTP client measures its deadline by it), and
 * waits that take no time: a backoff is over at once, the call's deadline never fires by itself.
 */
function instantWaits(skewMs = 0): Clock {
  return {
    now: () => Date.now() + skewMs,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason as Error);
        if (ms < 1000) return resolve();
        signal?.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
      }),
  };
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The real Deel stack over a MockAgent whose answers the test queues on `pool`. */
function overMockDeel(options: Partial<ResilientDeelOptions> = {}) {
  const mock = new MockAgent();
  mock.disableNetConnect();
  cleanups.push(() => mock.close());
  const client = new DeelClient({ baseUrl: `${ORIGIN}/rest/v2`, token: "mock-org-token-123", timeoutMs: 5_000, dispatcher: mock });
  const deel = new ResilientDeel(client, {
    timeoutMs: 5_000,
    budget: null,
    maxAttempts: 3,
    retryBaseMs: 1,
    retryMaxMs: 1,
    breakerThreshold: 0,
    clock: instantWaits(),
    random: () => 0,
    ...options,
  });
  // The service times the Deel deadline as the layer does: from the real "now", held still.
  const start = Date.now();
  const clock = aClock(start);
  const store = memoryLedger(clock.clock);
  const service = new WorkerSessionService({ deel, store, clock: clock.clock, intentStaleAfterMs: STALE_MS });
  return { pool: mock.get(ORIGIN), service, store, clock, start };
}

const mintedBody = (expiresAt: string) => ({ data: { token: "minted-token", expires_at: expiresAt } });
const connectRefused = () => Object.assign(new Error("connect ECONNREFUSED 203.0.113.7:443"), { code: "ECONNREFUSED" });

describe("a create over the real Deel stack", () => {
  it("keeps the intent after a 502 then a 429 whose Retry-After does not fit: the 502 may have minted", async () => {
    const { pool, service, store, clock, start } = overMockDeel();
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(502, {});
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(429, {}, { headers: { "retry-after": "3600" } });
    const error = await service.create(actor, P1, undefined).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: "rate_limited", mayHaveMinted: true });
    expect(await store.getIntents([P1])).toEqual([{ profileId: P1, createdBy: "caller-1", startedAt: new Date(start) }]);
    clock.advance(STALE_MS);
    expect((await service.read([P1]))[0]?.status).toBe("UNKNOWN");
  });

  it("clears the intent after a 429 alone: Deel refused, no token can exist", async () => {
    const { pool, service, store } = overMockDeel();
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(429, {}, { headers: { "retry-after": "3600" } });
    await expect(service.create(actor, P1, undefined)).rejects.toMatchObject({ kind: "rate_limited", mayHaveMinted: false });
    expect(await store.getIntents([P1])).toEqual([null]);
  });

  it("clears the intent when the connection is refused on every attempt: the request never left", async () => {
    const { pool, service, store } = overMockDeel();
    pool.intercept({ path: SESSION_PATH, method: "POST" }).replyWithError(connectRefused()).times(3);
    await expect(service.create(actor, P1, undefined)).rejects.toMatchObject({ kind: "unavailable", mayHaveMinted: false });
    expect(await store.getIntents([P1])).toEqual([null]);
  });

  it("keeps the intent when a refused connection follows a 503: the 503 may have minted", async () => {
    const { pool, service, store } = overMockDeel();
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(503, {});
    pool.intercept({ path: SESSION_PATH, method: "POST" }).replyWithError(connectRefused()).times(2);
    await expect(service.create(actor, P1, undefined)).rejects.toMatchObject({ kind: "unavailable", mayHaveMinted: true });
    expect(await store.getIntents([P1])).toEqual([expect.objectContaining({ profileId: P1 })]);
  });

  it("clears the intent of a create the open circuit refused, and keeps the one whose 503s opened it", async () => {
    const { pool, service, store } = overMockDeel({ maxAttempts: 1, breakerThreshold: 1, breakerCooldownMs: 600_000 });
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(503, {});
    await expect(service.create(actor, P2, undefined)).rejects.toMatchObject({ kind: "unavailable", mayHaveMinted: true });
    await expect(service.create(actor, P1, undefined)).rejects.toMatchObject({ kind: "unavailable", mayHaveMinted: false });
    expect(await store.getIntents([P1, P2])).toEqual([null, expect.objectContaining({ profileId: P2 })]);
  });

  it("keeps the intent when the open circuit refuses the retry of a 503", async () => {
    const { pool, service, store } = overMockDeel({ breakerThreshold: 1, breakerCooldownMs: 600_000 });
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(503, {});
    await expect(service.create(actor, P1, undefined)).rejects.toMatchObject({ kind: "unavailable", status: 503, mayHaveMinted: true });
    expect(await store.getIntents([P1])).toEqual([expect.objectContaining({ profileId: P1 })]);
  });

  it("clears the intent when the budget has no slot before the deadline, and keeps it when that refusal follows a 502", async () => {
    const budget = new LocalBudget({ rps: 1, windowMs: 600_000 });
    cleanups.push(() => budget.close());
    const { pool, service, store } = overMockDeel({ budget });
    // The 502 takes the window's one slot; its retry finds none.
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(502, {});
    await expect(service.create(actor, P2, undefined)).rejects.toMatchObject({ status: 502, mayHaveMinted: true });
    await expect(service.create(actor, P1, undefined)).rejects.toMatchObject({ kind: "rate_limited", mayHaveMinted: false });
    expect(await store.getIntents([P1, P2])).toEqual([null, expect.objectContaining({ profileId: P2 })]);
  });

  it("clears the intent when too little of the deadline is left to call Deel at all", async () => {
    // The layer's clock runs a minute ahead of the create's start: the whole deadline is spent.
    const { service, store } = overMockDeel({ clock: instantWaits(60_000) });
    await expect(service.create(actor, P1, undefined)).rejects.toMatchObject({ kind: "unavailable", mayHaveMinted: false });
    expect(await store.getIntents([P1])).toEqual([null]);
  });

  it("keeps the intent after a garbled 201 answered twice", async () => {
    const { pool, service, store } = overMockDeel();
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(201, "{\"data\":").times(2);
    await expect(service.create(actor, P1, undefined)).rejects.toMatchObject({ kind: "bad_response", mayHaveMinted: true });
    expect(await store.getIntents([P1])).toEqual([expect.objectContaining({ profileId: P1 })]);
  });

  it("records the session and clears the intent when a 502 is followed by a 201", async () => {
    const { pool, service, store } = overMockDeel();
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(502, {});
    pool.intercept({ path: SESSION_PATH, method: "POST" }).reply(201, mintedBody("2030-01-02T00:00:00.000Z"));
    await expect(service.create(actor, P1, undefined)).resolves.toMatchObject({ token: "minted-token" });
    expect(await store.getIntents([P1])).toEqual([null]);
    expect((await service.read([P1]))[0]?.status).toBe("ACTIVE");
  });
});

/** A Deel whose next creates answer what the test queues: a session, or a DeelError. */
function scriptedDeel() {
  const answers: Array<MintedSession | DeelError> = [];
  const deel: DeelApi = {
    createSession: async () => {
      const next = answers.shift();
      if (next === undefined) throw new Error("no answer queued");
      if (next instanceof DeelError) throw next;
      return next;
    },
    revokeSession: async () => ({}),
  };
  const clock = aClock(START);
  const store = memoryLedger(clock.clock);
  const service = new WorkerSessionService({ deel, store, clock: clock.clock, intentStaleAfterMs: STALE_MS });
  return { answers, service, store, clock };
}

const lost = () => new DeelError("unavailable", "the answer never came", { mayHaveMinted: true });
const minted = (expiresAt: number, replayed = false): MintedSession => ({ token: "t", expiresAt: new Date(expiresAt), replayed });
const caller = (sub: string) => ({ ...actor, sub });

describe("a lost mint's UNKNOWN", () => {
  it("survives a later create that Deel refused: the intent still names the lost mint", async () => {
    const { answers, service, clock } = scriptedDeel();
    answers.push(lost(), new DeelError("bad_request", "refused", { status: 400 }));
    await expect(service.create(actor, P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    await expect(service.create(caller("caller-2"), P1, undefined)).rejects.toMatchObject({ kind: "bad_request" });
    expect((await service.read([P1]))[0]).toMatchObject({ status: "UNKNOWN", record: { createdBy: "caller-1", createdAt: new Date(START) } });
  });

  it("survives a later create refused before any request left (mayHaveMinted false)", async () => {
    const { answers, service, clock } = scriptedDeel();
    answers.push(lost(), new DeelError("unavailable", "circuit open", { mayHaveMinted: false }));
    await expect(service.create(actor, P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(1000);
    await expect(service.create(caller("caller-2"), P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    expect((await service.read([P1]))[0]).toMatchObject({ status: "UNKNOWN", record: { createdBy: "caller-1", createdAt: new Date(START) } });
  });

  it("keeps naming the oldest lost mint when a later one is lost too", async () => {
    const { answers, service, clock } = scriptedDeel();
    answers.push(lost(), lost());
    await expect(service.create(actor, P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    await expect(service.create(caller("caller-2"), P1, undefined)).rejects.toBeInstanceOf(DeelError);
    expect((await service.read([P1]))[0]).toMatchObject({ status: "UNKNOWN", record: { createdBy: "caller-1", createdAt: new Date(START) } });
  });

  it("survives a replay of the ledger's own session: that answer says nothing of the lost token", async () => {
    const { answers, service, clock } = scriptedDeel();
    const first = START + WORKER_TOKEN_LIFETIME_MS;
    answers.push(minted(first), lost(), minted(first, true));
    await service.create(actor, P1, anIdempotencyKey("key-1"));
    clock.advance(1000);
    await expect(service.create(caller("caller-2"), P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    // The same caller repeats its first create: Deel replays the token the ledger already holds.
    await expect(service.create(actor, P1, anIdempotencyKey("key-1"))).resolves.toMatchObject({ session: { createdBy: "caller-1", expiresAt: new Date(first) } });
    expect((await service.read([P1]))[0]).toMatchObject({ status: "UNKNOWN", record: { createdBy: "caller-2", createdAt: new Date(START + 1000) } });
  });

  it("survives a replay the ledger records, and a superseded replay", async () => {
    const { answers, service, clock } = scriptedDeel();
    answers.push(lost(), minted(START + WORKER_TOKEN_LIFETIME_MS, true), minted(START + 1000, true));
    await expect(service.create(actor, P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    await service.create(caller("caller-2"), P1, anIdempotencyKey("key-2"));
    expect((await service.read([P1]))[0]).toMatchObject({ status: "UNKNOWN", record: { createdBy: "caller-1" } });
    await expect(service.create(caller("caller-2"), P1, anIdempotencyKey("key-3"))).rejects.toBeInstanceOf(SupersededSessionError);
    expect((await service.read([P1]))[0]).toMatchObject({ status: "UNKNOWN", record: { createdBy: "caller-1" } });
  });

  it("ends when a later create mints and records a fresh session, even after a refused one", async () => {
    const { answers, service, store, clock } = scriptedDeel();
    answers.push(lost(), new DeelError("not_found", "no such worker", { status: 404 }), minted(START + 2 * WORKER_TOKEN_LIFETIME_MS));
    await expect(service.create(actor, P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    await expect(service.create(caller("caller-2"), P1, undefined)).rejects.toBeInstanceOf(DeelError);
    await service.create(caller("caller-3"), P1, undefined);
    expect(await store.getIntents([P1])).toEqual([null]);
    expect((await service.read([P1]))[0]).toMatchObject({ status: "ACTIVE", record: { createdBy: "caller-3" } });
  });

  it("ends once a token lifetime has passed: reads show the record again, or nothing", async () => {
    const { answers, service, clock } = scriptedDeel();
    answers.push(minted(START + 2 * WORKER_TOKEN_LIFETIME_MS), lost());
    await service.create(actor, P2, undefined);
    await expect(service.create(caller("caller-2"), P1, undefined)).rejects.toBeInstanceOf(DeelError);
    // P2: a recorded session, then a lost mint on it too.
    answers.push(lost());
    await expect(service.create(caller("caller-2"), P2, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(WORKER_TOKEN_LIFETIME_MS - 1);
    expect((await service.read([P1, P2])).map((entry) => entry?.status)).toEqual(["UNKNOWN", "UNKNOWN"]);
    clock.advance(1);
    const [p1, p2] = await service.read([P1, P2]);
    expect(p1).toBeNull();
    expect(p2).toMatchObject({ status: "ACTIVE", record: { createdBy: "caller-1" } });
  });

  it("gives way to a new lost mint once it is a token lifetime old", async () => {
    const { answers, service, clock } = scriptedDeel();
    answers.push(lost(), lost());
    await expect(service.create(actor, P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(WORKER_TOKEN_LIFETIME_MS);
    await expect(service.create(caller("caller-2"), P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(STALE_MS);
    expect((await service.read([P1]))[0]).toMatchObject({
      status: "UNKNOWN",
      record: { createdBy: "caller-2", createdAt: new Date(START + WORKER_TOKEN_LIFETIME_MS) },
    });
  });

  it("is not turned into a REVOKED record by a revoke once a token lifetime old", async () => {
    const { answers, service, store, clock } = scriptedDeel();
    answers.push(lost());
    await expect(service.create(actor, P1, undefined)).rejects.toBeInstanceOf(DeelError);
    clock.advance(WORKER_TOKEN_LIFETIME_MS);
    await expect(service.revoke(caller("operator"), P1)).resolves.toMatchObject({ session: null });
    expect(await store.getIntents([P1])).toEqual([null]);
  });
});
