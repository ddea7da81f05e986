/**
 * Resilience toward Deel, end to end: GraphQL over HTTP into the gateway, the gateway over HTTP into
 * a sandbox with its fault switches on. Attempts are counted at the sandbox, with the
 * Idempotency-Key each one carried. Waits (Retry-After, the deadline) run on a clock the test moves
 * by hand: what is asserted is when the gateway acts on its clock and in which order, never how long
 * the host took.
 */
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CreateWorkerSessionDocument, RevokeWorkerSessionDocument, WorkerSessionDocument } from "../generated/operations.js";
import { memoryLedger } from "../../src/sessions/create-store.js";
import type { SessionStore } from "../../src/sessions/store.js";
import { anAdminToken } from "../support/callers.js";
import { aManualClock, type ManualClock } from "../support/clock.js";
import { codes, gql, startTestGateway, type GraphQLResponse, type TestGateway, type TestGatewayOptions } from "../support/gateway.js";

/** Every test gateway here: no per-caller quota in the way of the load below. */
function start(options: TestGatewayOptions = {}): Promise<TestGateway> {
  return startTestGateway({ ...options, env: { CALLER_MUTATIONS_PER_MINUTE: "0", ...options.env } });
}

let admin: string;
beforeAll(async () => {
  admin = await anAdminToken("resilience-admin");
});

function create(gw: TestGateway, profileId: string, idempotencyKey?: string) {
  return gql(gw.url, CreateWorkerSessionDocument, { input: { profileId, idempotencyKey: idempotencyKey ?? null } }, { token: admin });
}
function revoke(gw: TestGateway, profileId: string) {
  return gql(gw.url, RevokeWorkerSessionDocument, { input: { profileId } }, { token: admin });
}
function read(gw: TestGateway, profileId: string) {
  return gql(gw.url, WorkerSessionDocument, { profileId }, { token: admin });
}
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
/** Lets real time pass until `condition` holds (the test then checks state, never how long it took). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5);
}
/** A promise's outcome, readable while it is still pending. */
function watch<T>(promise: Promise<T>): { readonly settled: boolean; promise: Promise<T> } {
  const watched = { settled: false, promise };
  promise.then(
    () => (watched.settled = true),
    () => (watched.settled = true),
  );
  return watched;
}
function posts(gw: TestGateway) {
  return gw.sandbox.requests.filter((r) => r.method === "POST").map((r) => ({ key: r.idempotencyKey, status: r.status, at: r.at }));
}

describe("retries, over HTTP", () => {
  let gw: TestGateway;
  let P1: string;
  let P2: string;
  beforeAll(async () => {
    // The breaker has its own test below; here, the failures of one test would open it for the next.
    gw = await start({ env: { DEEL_BREAKER_THRESHOLD: "0" } });
    [P1, P2] = gw.sandbox.profiles as [string, string];
  });
  afterAll(() => gw.close());
  afterEach(() => gw.sandbox.reset());

  it("a revoke that meets one 503 succeeds after exactly 2 DELETEs", async () => {
    await create(gw, P1);
    gw.sandbox.reset();
    gw.sandbox.injectFault({ kind: "status", status: 503 }, { times: 1, method: "DELETE" });
    const response = await revoke(gw, P1);
    expect(response.errors).toBeUndefined();
    expect(response.data?.revokeWorkerSession.profileId).toBe(P1);
    expect(gw.sandbox.requests.map((r) => [r.method, r.status])).toEqual([
      ["DELETE", 503],
      ["DELETE", 204],
    ]);
  });

  it("a create that meets one 500 succeeds after exactly 2 POSTs carrying the same key, and one live token", async () => {
    gw.sandbox.injectFault({ kind: "status", status: 500 }, { times: 1, method: "POST" });
    const response = await create(gw, P1);
    expect(response.errors).toBeUndefined();
    const attempts = posts(gw);
    expect(attempts.map((a) => a.status)).toEqual([500, 201]);
    expect(attempts[0]?.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(attempts[1]?.key).toBe(attempts[0]?.key);
    expect(response.data?.createWorkerSession.token).toBe(gw.sandbox.state(P1)?.token);
    expect((await read(gw, P1)).data?.workerSession?.status).toBe("ACTIVE");
  });

  it("re-sends the key derived from the caller's idempotencyKey, never the raw key", async () => {
    gw.sandbox.injectFault({ kind: "reset" }, { times: 1 });
    const response = await create(gw, P2, "order-42");
    expect(response.errors).toBeUndefined();
    const keys = posts(gw).map((a) => a.key);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^wsg1-/);
    expect(keys[1]).toBe(keys[0]);
  });

  it("a non-JSON body gives UPSTREAM_UNAVAILABLE without showing that body", async () => {
    gw.sandbox.injectFault({ kind: "non_json", status: 502 });
    const response = await create(gw, P2);
    expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(response.raw).not.toMatch(/<html|<body|upstream trouble|DOCTYPE/i);
    gw.sandbox.clearFaults();
    gw.sandbox.injectFault({ kind: "raw", status: 201, body: "<html><body>maintenance page</body></html>", contentType: "text/html" });
    const garbled = await create(gw, P2);
    expect(codes(garbled)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(garbled.raw).not.toMatch(/<html|maintenance/i);
    // A garbled 201 is retried once (same key), never more.
    expect(posts(gw).slice(-2).map((a) => a.status)).toEqual([201, 201]);
  });

  it("never retries 400, 401, 403 or 404", async () => {
    for (const status of [400, 403, 404]) {
      gw.sandbox.injectFault({ kind: "status", status }, { times: 1 });
      await create(gw, P1);
    }
    expect(posts(gw).map((a) => a.status)).toEqual([400, 403, 404]);
    const wrong = await start({ env: { DEEL_API_TOKEN: "deel-token-that-deel-does-not-know" } });
    try {
      expect(codes(await create(wrong, P1))).toEqual(["UPSTREAM_CREDENTIALS"]);
      expect(wrong.sandbox.count({ status: 401 })).toBe(1);
    } finally {
      await wrong.close();
    }
  });
});

describe("waits on the gateway's clock, over HTTP", () => {
  let gw: TestGateway | undefined;
  let clock: ManualClock;
  /** A gateway whose Deel layer runs on a clock that stands still until the test moves it. */
  async function startOnManualClock(env: Record<string, string> = {}): Promise<TestGateway> {
    clock = aManualClock();
    gw = await start({ env: { DEEL_BREAKER_THRESHOLD: "0", ...env }, overrides: { clock } });
    return gw;
  }
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it("a create that meets one 429 with Retry-After: 1 waits that second on its clock, then succeeds with the same key", async () => {
    const gw = await startOnManualClock();
    const [P1] = gw.sandbox.profiles as [string];
    gw.sandbox.injectFault({ kind: "rate_limit", retryAfterSeconds: 1 }, { times: 1 });
    const call = watch(create(gw, P1));
    // The 429 came back and the gateway sleeps for Retry-After (plus at most 10 % jitter)…
    await until(() => clock.pending().some((ms) => ms >= 1_000 && ms <= 1_100));
    // …and while its clock stands still, nothing more goes to Deel and the caller has no answer.
    expect(posts(gw).map((a) => a.status)).toEqual([429]);
    expect(call.settled).toBe(false);
    const waited = clock.advanceToNext();
    expect(waited).toBeGreaterThanOrEqual(1_000);
    expect(waited).toBeLessThanOrEqual(1_100);
    const result = await call.promise;
    expect(result.errors).toBeUndefined();
    const attempts = posts(gw);
    expect(attempts.map((a) => a.status)).toEqual([429, 201]);
    expect(attempts[1]?.key).toBe(attempts[0]?.key);
  });

  it("a persistent 429 with Retry-After: 60 gives RATE_LIMITED with retryAfterSeconds at once, without waiting on its clock", async () => {
    const gw = await startOnManualClock();
    const [P1] = gw.sandbox.profiles as [string];
    gw.sandbox.injectFault({ kind: "rate_limit", retryAfterSeconds: 60 });
    // The clock never moves in this test: a call that waited for any part of the 60 s would never end.
    const result = await create(gw, P1);
    expect(codes(result)).toEqual(["RATE_LIMITED"]);
    const seconds = result.errors?.[0]?.extensions?.retryAfterSeconds;
    expect(Number.isInteger(seconds)).toBe(true);
    expect(seconds).toBe(60);
    expect(posts(gw)).toHaveLength(1);
    expect(clock.pending()).toEqual([]);
  });

  it("a hanging Deel gives UPSTREAM_UNAVAILABLE at the deadline and not before", async () => {
    // A deadline long enough that undici's own per-phase bounds (the same 60 s, real time) never play.
    const gw = await startOnManualClock({ DEEL_TIMEOUT_MS: "60000" });
    const [P1] = gw.sandbox.profiles as [string];
    gw.sandbox.injectFault({ kind: "hang" });
    const first = watch(create(gw, P1));
    await until(() => gw.sandbox.requests.length === 1);
    // Deel holds the request: the caller waits for the deadline rather than failing at once.
    expect(first.settled).toBe(false);
    // The soonest end of a wait is the deadline itself (counted from when the service took the call,
    // a little after this clock was read): no earlier wait would let the call end before it.
    expect(clock.advanceToNext()).toBeGreaterThanOrEqual(60_000);
    const result = await first.promise;
    expect(codes(result), result.raw.slice(0, 300)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(posts(gw)).toEqual([expect.objectContaining({ status: 0 })]);
    expect(clock.pending()).toEqual([]);
  });

  it("three calls queued on one hanging profile are all answered by one deadline, counted from their arrival", async () => {
    // Ordered, yet all answered by one deadline, because the deadline counts from arrival, not from
    // the head of the profile's queue: once the first has timed out, the two queued behind it have
    // too little left to call Deel at all.
    const gw = await startOnManualClock({ DEEL_TIMEOUT_MS: "60000" });
    const [P1] = gw.sandbox.profiles as [string];
    gw.sandbox.injectFault({ kind: "hang" });
    const all = watch(Promise.all([create(gw, P1), revoke(gw, P1), create(gw, P1)]));
    await until(() => gw.sandbox.requests.length === 1);
    expect(all.settled).toBe(false);
    clock.advanceToNext();
    const answers = await all.promise;
    expect(answers.map((r) => codes(r))).toEqual([["UPSTREAM_UNAVAILABLE"], ["UPSTREAM_UNAVAILABLE"], ["UPSTREAM_UNAVAILABLE"]]);
    expect(gw.sandbox.requests).toHaveLength(1);
  });
});

describe("the outbound budget, over HTTP", () => {
  // 15 distinct profiles, so that per-profile ordering does not chain the calls: only the budget paces them.
  const profiles15 = Array.from({ length: 15 }, () => randomUUID());

  it("15 concurrent creates against a sandbox that enforces 5 rps see zero upstream 429s", async () => {
    const gw = await start({ env: { DEEL_RATE_LIMIT_RPS: "5" }, sandbox: { rateLimitRps: 5, profiles: profiles15 } });
    try {
      const profiles = gw.sandbox.profiles;
      const responses = await Promise.all(Array.from({ length: 15 }, (_, i) => create(gw, profiles[i % profiles.length] as string)));
      expect(gw.sandbox.count({ status: 429 })).toBe(0);
      for (const response of responses) {
        if (response.errors === undefined) continue;
        expect(codes(response)).toEqual(["RATE_LIMITED"]);
      }
      // With the default 8 s deadline, three seconds of pacing fit: everybody got a token.
      expect(responses.filter((r) => r.errors === undefined)).toHaveLength(15);
      expect(gw.sandbox.count({ method: "POST", status: 201 })).toBe(15);
    } finally {
      await gw.close();
    }
  });

  it("a call that cannot start before its deadline gets RATE_LIMITED at once, before the next window's calls leave", async () => {
    const gw = await start({ env: { DEEL_RATE_LIMIT_RPS: "5", DEEL_TIMEOUT_MS: "1500" }, sandbox: { rateLimitRps: 5, profiles: profiles15 } });
    try {
      const profiles = gw.sandbox.profiles;
      // Each answer with how many POSTs Deel had received when it came back.
      const answers = await Promise.all(
        Array.from({ length: 15 }, (_, i) =>
          create(gw, profiles[i % profiles.length] as string).then((result) => ({ result, postsSeen: gw.sandbox.count({ method: "POST" }) })),
        ),
      );
      expect(gw.sandbox.count({ status: 429 })).toBe(0);
      const limited = answers.filter((a) => a.result.errors !== undefined);
      const succeeded = answers.filter((a) => a.result.errors === undefined);
      expect(succeeded.length).toBeGreaterThanOrEqual(5);
      expect(limited.length).toBeGreaterThanOrEqual(1);
      for (const { result, postsSeen } of limited) {
        expect(codes(result)).toEqual(["RATE_LIMITED"]);
        const seconds = result.errors?.[0]?.extensions?.retryAfterSeconds;
        expect(Number.isInteger(seconds) && (seconds as number) >= 1).toBe(true);
        // Refused at once: no call of the next window (a full window later) had left yet.
        expect(postsSeen).toBeLessThanOrEqual(5);
      }
      expect(gw.sandbox.count({ method: "POST" })).toBe(succeeded.length);
    } finally {
      await gw.close();
    }
  });
});

describe("the circuit breaker, over HTTP", () => {
  it("40 calls against a Deel that always answers 500 reach it far fewer than 40 times, and succeed again once it recovers", async () => {
    const gw = await start({ env: { DEEL_BREAKER_COOLDOWN_MS: "500" } });
    try {
      const profiles = gw.sandbox.profiles;
      gw.sandbox.injectFault({ kind: "status", status: 500 });
      const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => create(gw, profiles[i % profiles.length] as string)));
      expect(responses.map((r) => codes(r)[0])).toEqual(Array(40).fill("UPSTREAM_UNAVAILABLE"));
      // DEEL_BREAKER_THRESHOLD=5: the circuit opens after 5 failed attempts; a retry already under
      // way may add one or two. Without it: 40 calls × 3 attempts = 120.
      expect(gw.sandbox.requests.length).toBeGreaterThanOrEqual(5);
      expect(gw.sandbox.requests.length).toBeLessThanOrEqual(8);

      gw.sandbox.clearFaults();
      const before = gw.sandbox.requests.length;
      expect(codes(await create(gw, profiles[0] as string))).toEqual(["UPSTREAM_UNAVAILABLE"]); // still open: fails fast
      expect(gw.sandbox.requests.length).toBe(before);
      await sleep(600);
      const back = await Promise.all(profiles.map((p) => create(gw, p)));
      // One probe first, then everybody: the probe closes the circuit and the rest queue behind nothing.
      expect(back.filter((r) => r.errors === undefined).length).toBeGreaterThanOrEqual(1);
      const again = await Promise.all(profiles.map((p) => create(gw, p)));
      expect(again.map((r) => r.errors)).toEqual(Array(profiles.length).fill(undefined));
    } finally {
      await gw.close();
    }
  });
});

describe("per-profile ordering under load", () => {
  it("after 200 random concurrent creates and revokes on 5 profiles, every ledger record equals Deel's state", async () => {
    // A ledger whose writes take a random 0–10 ms: without per-profile ordering, a create and a
    // revoke applied at Deel in one order would then land in the ledger in the other.
    const ledger = memoryLedger();
    const pause = () => sleep(Math.random() * 10);
    const slowLedger: SessionStore = {
      get: (profileId) => ledger.get(profileId),
      getMany: (profileIds) => ledger.getMany(profileIds),
      getStates: (profileIds) => ledger.getStates(profileIds),
      beginMint: (intent, fence) => ledger.beginMint(intent, fence),
      endMint: (profileId, fence, startedAt) => ledger.endMint(profileId, fence, startedAt),
      getIntents: (profileIds) => ledger.getIntents(profileIds),
      listByCreator: (createdBy) => ledger.listByCreator(createdBy),
      listIntentsByCreator: (createdBy) => ledger.listIntentsByCreator(createdBy),
      put: async (record, fence) => {
        await pause();
        return ledger.put(record, fence);
      },
      putUnlessOvertaken: async (record, since, fence) => {
        await pause();
        return ledger.putUnlessOvertaken(record, since, fence);
      },
      markRevoked: async (profileId, revokedAt, revokedBy, fence) => {
        await pause();
        return ledger.markRevoked(profileId, revokedAt, revokedBy, fence);
      },
      appendHistory: (events) => ledger.appendHistory(events),
      readHistory: (requests) => ledger.readHistory(requests),
      ping: () => ledger.ping(),
      close: () => ledger.close(),
    };
    const gw = await start({ sandbox: { latencyMs: 2 }, overrides: { store: slowLedger } });
    try {
      const profiles = gw.sandbox.profiles;
      // A seeded generator, so that a failure can be replayed.
      let seed = 20250517;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      // A few transient faults along the way: retried, and applied before Deel does anything.
      gw.sandbox.injectFault({ kind: "status", status: 503 }, { times: 2 });
      gw.sandbox.injectFault({ kind: "reset" }, { times: 2 });
      const plan = Array.from({ length: 200 }, () => ({
        profile: profiles[Math.floor(random() * profiles.length)] as string,
        action: random() < 0.6 ? ("create" as const) : ("revoke" as const),
      }));
      const responses: Array<GraphQLResponse<unknown>> = await Promise.all(
        plan.map(({ profile, action }) => (action === "create" ? create(gw, profile) : revoke(gw, profile))),
      );
      const failed = responses.filter((r) => r.errors !== undefined);
      expect(failed.map((r) => codes(r))).toEqual([]);

      const handedOut = new Set(
        responses.flatMap((r) => {
          const token = (r.data as { createWorkerSession?: { token: string } } | null | undefined)?.createWorkerSession?.token;
          return token === undefined ? [] : [token];
        }),
      );
      // One mint per successful create: no retry minted a second token.
      expect(gw.sandbox.count({ method: "POST", status: 201 })).toBe(handedOut.size);

      for (const profile of profiles) {
        const deel = gw.sandbox.state(profile);
        const ledger = (await read(gw, profile)).data?.workerSession;
        if (deel === undefined) {
          expect(ledger ?? null).toBeNull();
          continue;
        }
        expect(ledger).toBeTruthy();
        expect({ status: ledger?.status, expiresAt: ledger?.expiresAt }).toEqual({
          status: deel.revoked ? "REVOKED" : "ACTIVE",
          expiresAt: deel.expiresAt.toISOString(),
        });
        // The token Deel holds was handed to a caller: no state was lost on the way.
        expect(handedOut.has(deel.token)).toBe(true);
      }
    } finally {
      await gw.close();
    }
  });
});
