/**
 * The resilience layer (deadline, retries, budget, breaker) around a fake Deel, on vitest's fake
 * clock: every wait is exact, no real time passes and no socket is opened. The fake answers as the
 * HTTP client would (a 503 is `unavailable` with status 503, a reset connection is `unavailable`
 * without a status…) and records every attempt: when it left, with which Idempotency-Key and which
 * deadline. The same layer over real HTTP is in test/integration/deel-over-http.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DeelError, type DeelErrorKind } from "../../src/deel/errors.js";
import type { OutboundBudget } from "../../src/deel/budget.js";
import { LocalBudget } from "../../src/deel/local-budget.js";
import { ResilientDeel, type DeelEvent, type ResilientDeelOptions } from "../../src/deel/resilient.js";
import type { CallOptions, DeelApi, MintedSession, DeelRevocation } from "../../src/deel/types.js";
import { aProfileId } from "../support/profiles.js";
import type { ProfileId } from "../../src/base/profile-id.js";

/** When every test begins, on the fake clock. Times below are in ms after it. */
const T0 = Date.UTC(2030, 0, 1);
const PROFILES = [
  "7a1c2e4b-0d3f-4c5a-9b6e-1f2a3b4c5d6e",
  "8b2d3f5c-1e4a-4d6b-8c7f-2a3b4c5d6e7f",
  "9c3e4a6d-2f5b-4e7c-9d8a-3b4c5d6e7f8a",
  "ad4f5b7e-3a6c-4f8d-8e9b-4c5d6e7f8a9b",
  "be5a6c8f-4b7d-4a9e-9f0c-5d6e7f8a9b0c",
].map(aProfileId);
const [P1, P2] = PROFILES as [ProfileId, ProfileId, ...ProfileId[]];

type Method = "POST" | "DELETE";
/** How the fake answers an attempt that does not succeed. */
type Fault =
  | { status: number; retryAfterSeconds?: number }
  /** The connection broke: no answer at all. */
  | "reset"
  /** A 2xx outside the contract (truncated JSON, a 201 without a token). */
  | "garbled"
  /** No answer until the attempt's deadline, or its caller's abort. */
  | "hang";

interface Attempt {
  method: Method;
  profileId: string;
  key: string | undefined;
  /** When it left. */
  at: number;
  /** The deadline it was given. */
  deadline: number | undefined;
  /** What Deel answered; 0 when nothing came back. */
  status: number;
}

function kindFor(status: number): DeelErrorKind {
  if (status === 400) return "bad_request";
  if (status === 401 || status === 403) return "credentials";
  if (status === 404) return "not_found";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "unavailable";
  return "bad_response";
}

/** Deel, in process, answering each attempt from the faults it was given (else success). */
class FakeDeel implements DeelApi {
  readonly attempts: Attempt[] = [];
  /** How long an answer takes. */
  latencyMs = 0;
  private faults: Array<{ fault: Fault; left: number; method: Method | undefined }> = [];

  /** The next `times` attempts (of `method`, when given) meet `fault`. */
  fail(fault: Fault, options: { times?: number; method?: Method } = {}): void {
    this.faults.push({ fault, left: options.times ?? Number.POSITIVE_INFINITY, method: options.method });
  }

  clearFaults(): void {
    this.faults = [];
  }

  createSession(profileId: string, idempotencyKey: string, options: CallOptions = {}): Promise<MintedSession> {
    return this.answer("POST", profileId, idempotencyKey, options, () => ({
      token: `token-${this.attempts.length}`,
      expiresAt: new Date(Date.now() + 3_600_000),
      replayed: false,
    }));
  }

  revokeSession(profileId: string, options: CallOptions = {}): Promise<DeelRevocation> {
    return this.answer("DELETE", profileId, undefined, options, () => ({}));
  }

  private async answer<T>(method: Method, profileId: string, key: string | undefined, options: CallOptions, success: () => T): Promise<T> {
    const operation = method === "POST" ? "POST /workers/session" : "DELETE /workers/{profile_id}/session";
    const entry = this.faults.find((f) => f.left > 0 && (f.method === undefined || f.method === method));
    if (entry !== undefined) entry.left -= 1;
    const fault = entry?.fault;
    const attempt: Attempt = {
      method,
      profileId,
      key,
      at: Date.now() - T0,
      deadline: options.deadline === undefined ? undefined : options.deadline - T0,
      status: fault === undefined ? (method === "POST" ? 201 : 204) : typeof fault === "object" ? fault.status : fault === "garbled" ? 201 : 0,
    };
    this.attempts.push(attempt);
    if (fault === "hang") return this.hang(operation, options);
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (fault === undefined) return success();
    if (fault === "reset") throw new DeelError("unavailable", `Could not reach Deel on ${operation}: other side closed`);
    if (fault === "garbled") throw new DeelError("bad_response", `Deel's 201 on ${operation} is not the documented answer`, { status: 201 });
    const details: { status: number; retryAfterSeconds?: number } = { status: fault.status };
    if (fault.retryAfterSeconds !== undefined) details.retryAfterSeconds = fault.retryAfterSeconds;
    throw new DeelError(kindFor(fault.status), `Deel answered ${fault.status} on ${operation}`, details);
  }

  /** As the HTTP client does: gives up at the deadline, or when the caller aborts. */
  private hang(operation: string, options: CallOptions): Promise<never> {
    return new Promise<never>((_resolve, reject) => {
      const fail = () => {
        clearTimeout(timer);
        reject(new DeelError("unavailable", `Deel did not answer in time on ${operation}`));
      };
      const timer = setTimeout(fail, options.deadline === undefined ? 60_000 : options.deadline - Date.now());
      options.signal?.addEventListener("abort", fail, { once: true });
    });
  }
}

let deel: FakeDeel;
const budgets: LocalBudget[] = [];

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  deel = new FakeDeel();
});
afterEach(async () => {
  for (const budget of budgets.splice(0)) await budget.close();
  vi.useRealTimers();
});

/** Ms since the test began, on the fake clock. */
function now(): number {
  return Date.now() - T0;
}

/** A layer with test-friendly defaults: short, jitter-free backoff (random 0.5: 15 ms, then 30, 60…). */
function resilient(options: Partial<ResilientDeelOptions> = {}, events: DeelEvent[] = []): ResilientDeel {
  const layer = new ResilientDeel(deel, { timeoutMs: 5_000, budget: null, retryBaseMs: 20, random: () => 0.5, ...options });
  layer.observe((event) => events.push(event));
  return layer;
}

function budget(rps: number): LocalBudget {
  const made = new LocalBudget({ rps });
  budgets.push(made);
  return made;
}

type Settled<T> = PromiseSettledResult<T> & { at: number };

/** Runs the fake clock, timer by timer, until `promise` settles; how it settled, and when. */
async function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  let settled: Settled<T> | undefined;
  promise.then(
    (value) => (settled = { status: "fulfilled", value, at: now() }),
    (reason: unknown) => (settled = { status: "rejected", reason, at: now() }),
  );
  for (;;) {
    // Lets what the last timer started run its course (promise callbacks), without moving the clock.
    await vi.advanceTimersByTimeAsync(0);
    if (settled !== undefined) return settled;
    if (vi.getTimerCount() === 0) throw new Error("the call never settles: no timer is left to run");
    await vi.advanceTimersToNextTimerAsync();
  }
}

/** Runs the fake clock until a call that must fail does; its DeelError, and when it failed. */
async function failure(promise: Promise<unknown>): Promise<{ error: DeelError; at: number }> {
  const settled = await settle(promise);
  if (settled.status === "fulfilled") throw new Error("expected the call to fail with a DeelError");
  expect(settled.reason).toBeInstanceOf(DeelError);
  return { error: settled.reason as DeelError, at: settled.at };
}

/** Runs the fake clock until a call that must succeed does; its value, and when. */
async function success<T>(promise: Promise<T>): Promise<{ value: T; at: number }> {
  const settled = await settle(promise);
  if (settled.status === "rejected") throw settled.reason;
  return { value: settled.value, at: settled.at };
}

describe("retries", () => {
  it("retries a DELETE that met one 503: exactly 2 DELETEs, the second after the backoff, then success", async () => {
    deel.fail({ status: 503 }, { times: 1, method: "DELETE" });
    const { value, at } = await success(resilient().revokeSession(P1));
    expect(value).toEqual({});
    expect(deel.attempts.map((a) => [a.method, a.status, a.at])).toEqual([
      ["DELETE", 503, 0],
      ["DELETE", 204, 15],
    ]);
    expect(at).toBe(15);
  });

  it("retries a POST that met one 500 with the same Idempotency-Key, and returns what the retry got", async () => {
    deel.fail({ status: 500 }, { times: 1, method: "POST" });
    const { value } = await success(resilient().createSession(P1, "key-500"));
    expect(deel.attempts.map(({ key, status }) => ({ key, status }))).toEqual([
      { key: "key-500", status: 500 },
      { key: "key-500", status: 201 },
    ]);
    expect(value.token).toBe("token-2");
  });

  it("retries a broken connection (no answer at all) with the same key", async () => {
    deel.fail("reset", { times: 2 });
    const { value } = await success(resilient().createSession(P2, "key-reset"));
    expect(deel.attempts.map(({ key, status, at }) => ({ key, status, at }))).toEqual([
      { key: "key-reset", status: 0, at: 0 },
      { key: "key-reset", status: 0, at: 15 },
      { key: "key-reset", status: 201, at: 45 },
    ]);
    expect(value.token).toBe("token-3");
  });

  it("gives up after maxAttempts on a persistent 5xx, as unavailable", async () => {
    deel.fail({ status: 502 });
    const { error } = await failure(resilient({ maxAttempts: 4 }).createSession(P1, "key-502"));
    expect(error.kind).toBe("unavailable");
    expect(error.status).toBe(502);
    expect(deel.attempts.map((a) => a.key)).toEqual(["key-502", "key-502", "key-502", "key-502"]);
  });

  it.each([400, 401, 403, 404])("never retries a %i", async (status) => {
    deel.fail({ status });
    const layer = resilient();
    expect((await failure(layer.createSession(P1, "key-4xx"))).at).toBe(0);
    expect((await failure(layer.revokeSession(P1))).at).toBe(0);
    expect(deel.attempts.map((a) => a.status)).toEqual([status, status]);
  });

  it("backs off exponentially with jitter: between half and all of base · 2^(attempt-1)", async () => {
    deel.fail({ status: 500 });
    const events: DeelEvent[] = [];
    const randoms = [0, 0.999];
    await failure(resilient({ retryBaseMs: 200, random: () => randoms.shift() ?? 0 }, events).revokeSession(P1));
    const waits = events.flatMap((e) => (e.type === "attempt_end" && e.retryInMs !== undefined ? [e.retryInMs] : []));
    // Attempt 1: between 100 and 200 ms (random 0 → 100); attempt 2: between 200 and 400 (random ≈1 → 400).
    expect(waits).toEqual([100, 400]);
    expect(deel.attempts.map((a) => a.at)).toEqual([0, 100, 500]);
  });

  it("caps the backoff at retryMaxMs", async () => {
    deel.fail({ status: 500 });
    await failure(resilient({ retryBaseMs: 200, retryMaxMs: 300, maxAttempts: 4, random: () => 0.999 }).revokeSession(P1));
    expect(deel.attempts.map((a) => a.at)).toEqual([0, 200, 500, 800]);
  });
});

describe("Deel's 429", () => {
  it("honours Retry-After: 1 when it fits in the deadline, and succeeds with the same key", async () => {
    deel.fail({ status: 429, retryAfterSeconds: 1 }, { times: 1 });
    const { at } = await success(resilient().createSession(P1, "key-429"));
    expect(deel.attempts.map(({ key, status, at }) => ({ key, status, at }))).toEqual([
      { key: "key-429", status: 429, at: 0 },
      { key: "key-429", status: 201, at: 1_050 },
    ]);
    expect(at).toBe(1_050);
  });

  it.each([
    [0, 1_000],
    [0.999, 1_100],
  ])("waits Retry-After plus at most a tenth of it as jitter (random %s: %s ms)", async (random, waitMs) => {
    deel.fail({ status: 429, retryAfterSeconds: 1 }, { times: 1 });
    await success(resilient({ random: () => random }).revokeSession(P1));
    expect(deel.attempts.map((a) => a.at)).toEqual([0, waitMs]);
  });

  it("answers rate_limited at once, with Deel's retryAfterSeconds, when Retry-After does not fit", async () => {
    deel.fail({ status: 429, retryAfterSeconds: 60 });
    const { error, at } = await failure(resilient().createSession(P1, "key-60"));
    expect(at).toBe(0);
    expect(error.kind).toBe("rate_limited");
    expect(error.retryAfterSeconds).toBe(60);
    expect(deel.attempts).toHaveLength(1);
  });

  it("answers rate_limited with an integer retryAfterSeconds ≥ 1 when retries of a header-less 429 run out", async () => {
    deel.fail({ status: 429 });
    const { error } = await failure(resilient().revokeSession(P1));
    expect(error.kind).toBe("rate_limited");
    // The backoff the next attempt would have waited (60 ms), rounded up to whole seconds.
    expect(error.retryAfterSeconds).toBe(1);
    expect(deel.attempts.map((a) => [a.method, a.status, a.at])).toEqual([
      ["DELETE", 429, 0],
      ["DELETE", 429, 15],
      ["DELETE", 429, 45],
    ]);
  });
});

describe("the deadline", () => {
  it("hands the deadline to the attempt, and a hanging call ends exactly then, without a retry", async () => {
    deel.fail("hang");
    const { error, at } = await failure(resilient({ timeoutMs: 500 }).createSession(P1, "key-hang"));
    expect(error.kind).toBe("unavailable");
    expect(at).toBe(500);
    // No retry: nothing of the deadline was left for one.
    expect(deel.attempts.map((a) => ({ at: a.at, deadline: a.deadline }))).toEqual([{ at: 0, deadline: 500 }]);
  });

  it("never starts a backoff that would outlive the deadline", async () => {
    deel.fail({ status: 503 });
    const { error, at } = await failure(resilient({ timeoutMs: 800, retryBaseMs: 2_000 }).revokeSession(P1));
    expect(at).toBe(0);
    expect(error.kind).toBe("unavailable");
    expect(deel.attempts).toHaveLength(1);
  });

  it("counts from startedAt: a call that queued past its deadline fails without reaching Deel", async () => {
    const events: DeelEvent[] = [];
    const layer = resilient({ timeoutMs: 1_000 }, events);
    const { error, at } = await failure(layer.createSession(P1, "key-late", { startedAt: Date.now() - 1_000 }));
    expect(error.kind).toBe("unavailable");
    expect(at).toBe(0);
    expect(deel.attempts).toHaveLength(0);
    expect(events).toEqual([{ type: "rejected", endpoint: "POST /workers/session", attempt: 1, reason: "deadline" }]);
  });

  it("passes the call's deadline to each attempt, retries included", async () => {
    deel.fail({ status: 500 }, { times: 1 });
    deel.fail("hang");
    const { error, at } = await failure(resilient({ timeoutMs: 700 }).createSession(P1, "key-left"));
    expect(error.kind).toBe("unavailable");
    expect(at).toBe(700);
    expect(deel.attempts.map(({ status, at, deadline }) => ({ status, at, deadline }))).toEqual([
      { status: 500, at: 0, deadline: 700 },
      { status: 0, at: 15, deadline: 700 },
    ]);
  });

  it("keeps the caller's earlier deadline", async () => {
    deel.fail("hang");
    const { at } = await failure(resilient({ timeoutMs: 5_000 }).revokeSession(P1, { deadline: T0 + 2_000 }));
    expect(at).toBe(2_000);
    expect(deel.attempts.map((a) => a.deadline)).toEqual([2_000]);
  });
});

describe("bad answers from Deel", () => {
  it("retries a garbled 201 once, with the same key, then gives up as bad_response", async () => {
    deel.fail("garbled");
    const { error } = await failure(resilient({ maxAttempts: 5 }).createSession(P1, "key-trunc"));
    expect(error.kind).toBe("bad_response");
    expect(deel.attempts.map((a) => a.key)).toEqual(["key-trunc", "key-trunc"]);
  });

  it("recovers when the garbled 201 was a one-off", async () => {
    deel.fail("garbled", { times: 1 });
    const { value } = await success(resilient().createSession(P1, "key-notoken"));
    expect(value.token).toBe("token-2");
    expect(deel.attempts.map((a) => a.status)).toEqual([201, 201]);
  });

  it("never retries an unexpected 4xx (e.g. 422)", async () => {
    deel.fail({ status: 422 });
    const { error } = await failure(resilient().createSession(P1, "key-422"));
    expect(error.kind).toBe("bad_response");
    expect(deel.attempts).toHaveLength(1);
  });
});

describe("the outbound budget", () => {
  it("takes a slot before every attempt, retries included", async () => {
    deel.fail({ status: 503 }, { times: 1 });
    const events: DeelEvent[] = [];
    await success(resilient({ budget: budget(1) }, events).revokeSession(P1));
    // One call per 1.1 s: the retry waited for the next slot, not just its 15 ms backoff.
    expect(deel.attempts.map((a) => a.at)).toEqual([0, 1_100]);
    const waits = events.flatMap((e) => (e.type === "attempt_start" ? [e.budgetWaitMs] : []));
    expect(waits).toEqual([0, 1_085]);
  });

  it("fails a call at once with rate_limited when no slot can start before its deadline", async () => {
    const events: DeelEvent[] = [];
    const layer = resilient({ budget: budget(1), timeoutMs: 800 }, events);
    const ok = settle(layer.createSession(P1, "key-a"));
    const refused = await failure(layer.createSession(P2, "key-b"));
    expect((await ok).status).toBe("fulfilled");
    expect(refused.at).toBe(0);
    expect(refused.error.kind).toBe("rate_limited");
    // The next slot is 1.1 s away.
    expect(refused.error.retryAfterSeconds).toBe(2);
    expect(deel.attempts.map((a) => a.key)).toEqual(["key-a"]);
    expect(events).toContainEqual({ type: "rejected", endpoint: "POST /workers/session", attempt: 1, reason: "budget" });
  });

  it("reports the calls waiting for a slot", async () => {
    const layer = resilient({ budget: budget(1) });
    const calls = Promise.all([layer.revokeSession(P1), layer.revokeSession(P2)]);
    await vi.advanceTimersByTimeAsync(1_099);
    expect(layer.budgetQueueDepth).toBe(1);
    expect(deel.attempts.map((a) => a.at)).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    await calls;
    expect(layer.budgetQueueDepth).toBe(0);
    expect(deel.attempts.map((a) => a.at)).toEqual([0, 1_100]);
  });
});

describe("the circuit breaker", () => {
  it("opens after repeated failures so that 40 calls reach Deel only 5 times, then lets traffic back in", async () => {
    deel.fail({ status: 500 });
    const events: DeelEvent[] = [];
    const layer = resilient({ breakerThreshold: 5, breakerCooldownMs: 300 }, events);
    // 40 calls in 5 lanes, as the gateway's per-profile ordering would send them for 5 profiles.
    const lanes = PROFILES.map(async (profile, lane) => {
      const outcomes: Array<PromiseSettledResult<unknown>> = [];
      for (let i = 0; i < 8; i += 1) outcomes.push(...(await Promise.allSettled([layer.createSession(profile, `key-${lane}-${i}`)])));
      return outcomes;
    });
    const { value: results, at } = await success(Promise.all(lanes).then((all) => all.flat()));
    expect(results).toHaveLength(40);
    expect(results.every((r) => r.status === "rejected" && (r.reason as DeelError).kind === "unavailable")).toBe(true);
    // The first call of each lane fails and opens the circuit; their retries, after the 15 ms
    // backoff, and every later call fail fast.
    expect(deel.attempts.map((a) => a.at)).toEqual([0, 0, 0, 0, 0]);
    expect(at).toBe(15);
    expect(layer.breakerState).toBe("open");

    // Half-open exactly one cooldown after it opened. Still down: the one probe fails and the circuit opens again.
    await vi.advanceTimersByTimeAsync(284);
    expect(layer.breakerState).toBe("open");
    await vi.advanceTimersByTimeAsync(1);
    expect(layer.breakerState).toBe("half_open");
    const during = await settle(Promise.allSettled([layer.revokeSession(P1), layer.revokeSession(P2)]));
    expect(during.status === "fulfilled" && during.value.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(deel.attempts.map((a) => a.at)).toEqual([0, 0, 0, 0, 0, 300]);
    expect(layer.breakerState).toBe("open");

    // Deel recovers: after the cooldown, the probe succeeds and the circuit closes.
    deel.clearFaults();
    await vi.advanceTimersByTimeAsync(600 - now());
    await success(layer.createSession(P1, "key-back"));
    expect(layer.breakerState).toBe("closed");
    await success(layer.revokeSession(P1));
    expect(deel.attempts.map((a) => [a.at, a.status]).slice(-2)).toEqual([
      [600, 201],
      [600, 204],
    ]);

    const transitions = events.flatMap((e) => (e.type === "breaker" ? [`${e.from}>${e.to}`] : []));
    expect(transitions).toEqual(["closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed"]);
    // 35 later calls and 5 retries while open; then, half-open, the second call and the probe's retry.
    expect(events.filter((e) => e.type === "rejected" && e.reason === "breaker_open")).toHaveLength(42);
  });

  it("releases callers waiting for a budget slot as soon as the circuit opens (no stampede)", async () => {
    deel.fail({ status: 500 });
    const layer = resilient({ budget: budget(5), breakerThreshold: 5 });
    const ended: number[] = [];
    const calls = Array.from({ length: 40 }, (_, i) =>
      layer.createSession(PROFILES[i % 5] as ProfileId, `stampede-${i}`).finally(() => ended.push(now())),
    );
    const { value: results } = await success(Promise.allSettled(calls));
    // The first 5 take the budget's burst and fail; the circuit opens, and everybody queued behind
    // them is answered at once instead of at their slot. The 5 end after their retry's backoff.
    expect(deel.attempts).toHaveLength(5);
    expect(ended.filter((at) => at === 0)).toHaveLength(35);
    expect(ended.filter((at) => at === 15)).toHaveLength(5);
    const kinds = results.map((r) => (r.status === "rejected" ? (r.reason as DeelError).kind : "ok"));
    expect(new Set(kinds)).toEqual(new Set(["unavailable", "rate_limited"]));
    expect(layer.budgetQueueDepth).toBe(0);
  });

  it("does not count 4xx answers (nor 429) as failures", async () => {
    deel.fail({ status: 404 });
    const layer = resilient({ breakerThreshold: 2, maxAttempts: 1 });
    for (let i = 0; i < 5; i += 1) expect((await failure(layer.revokeSession(P1))).error.kind).toBe("not_found");
    deel.clearFaults();
    deel.fail({ status: 429, retryAfterSeconds: 60 });
    for (let i = 0; i < 5; i += 1) expect((await failure(layer.revokeSession(P1))).error.kind).toBe("rate_limited");
    expect(layer.breakerState).toBe("closed");
    expect(deel.attempts).toHaveLength(10);
  });

  it("counts timeouts and connection errors as failures", async () => {
    deel.fail("reset", { times: 1 });
    deel.fail("hang", { times: 1 });
    const layer = resilient({ breakerThreshold: 2, maxAttempts: 1 });
    await failure(layer.revokeSession(P1));
    expect((await failure(layer.revokeSession(P1))).at).toBe(5_000);
    expect(layer.breakerState).toBe("open");
    const { error, at } = await failure(layer.revokeSession(P1));
    expect(at).toBe(5_000);
    expect(error.message).toMatch(/Circuit open/);
    // The default cooldown: 10 s.
    expect(error.retryAfterSeconds).toBe(10);
    expect(deel.attempts).toHaveLength(2);
  });
});

describe("observability", () => {
  it("reports each attempt with its endpoint, status, duration and the wait before the retry", async () => {
    deel.latencyMs = 7;
    deel.fail({ status: 503 }, { times: 1 });
    const events: DeelEvent[] = [];
    await success(resilient({}, events).revokeSession(P1));
    expect(events).toEqual([
      { type: "attempt_start", endpoint: "DELETE /workers/{profile_id}/session", attempt: 1, budgetWaitMs: 0 },
      {
        type: "attempt_end",
        endpoint: "DELETE /workers/{profile_id}/session",
        attempt: 1,
        outcome: "unavailable",
        status: 503,
        durationMs: 7,
        retryInMs: 15,
      },
      { type: "attempt_start", endpoint: "DELETE /workers/{profile_id}/session", attempt: 2, budgetWaitMs: 0 },
      { type: "attempt_end", endpoint: "DELETE /workers/{profile_id}/session", attempt: 2, outcome: "ok", status: 204, durationMs: 7 },
    ]);
    expect(deel.attempts.map((a) => a.at)).toEqual([0, 22]);
  });

  it("stops reporting to an observer once it is removed", async () => {
    const layer = resilient();
    const seen: DeelEvent[] = [];
    const stop = layer.observe((event) => seen.push(event));
    await success(layer.revokeSession(P1));
    expect(seen).toHaveLength(2);
    stop();
    await success(layer.revokeSession(P1));
    expect(seen).toHaveLength(2);
  });

  it("survives an observer that throws", async () => {
    const layer = resilient();
    layer.observe(() => {
      throw new Error("observer bug");
    });
    await expect(success(layer.revokeSession(P1))).resolves.toEqual({ value: {}, at: 0 });
  });
});

describe("mayHaveMinted on the error that ends a call", () => {
  it("is the OR over the attempts: a 502 then a 429 that does not fit ends rate_limited, and may have minted", async () => {
    deel.fail({ status: 502 }, { times: 1 });
    deel.fail({ status: 429, retryAfterSeconds: 60 });
    const { error } = await failure(resilient().createSession(P1, "key-502-429"));
    expect(error).toMatchObject({ kind: "rate_limited", retryAfterSeconds: 60, mayHaveMinted: true });
    expect(deel.attempts.map((a) => a.status)).toEqual([502, 429]);
  });

  it("is false when every attempt was refused (429s), and true when one was garbled", async () => {
    deel.fail({ status: 429 });
    expect((await failure(resilient().createSession(P1, "key-429"))).error.mayHaveMinted).toBe(false);
    deel.clearFaults();
    deel.fail("garbled", { times: 1 });
    deel.fail({ status: 404 });
    expect((await failure(resilient().createSession(P1, "key-garbled"))).error).toMatchObject({ kind: "not_found", mayHaveMinted: true });
  });

  it("is false for refusals before any attempt (open circuit, no budget slot, too little deadline), true when one follows a 503", async () => {
    const layer = resilient({ breakerThreshold: 1, maxAttempts: 1 });
    deel.fail({ status: 503 }, { times: 1 });
    expect((await failure(layer.createSession(P1, "key-503"))).error.mayHaveMinted).toBe(true);
    expect((await failure(layer.createSession(P2, "key-open"))).error).toMatchObject({ kind: "unavailable", mayHaveMinted: false });

    const paced = resilient({ budget: budget(1) });
    deel.fail({ status: 503 }, { times: 1 });
    // The 503 takes the window's one slot; its retry finds none before the deadline.
    const retried = await failure(paced.createSession(P1, "key-paced", { deadline: Date.now() + 1_500 }));
    expect(retried.error).toMatchObject({ status: 503, mayHaveMinted: true });
    const refused = await failure(paced.createSession(P2, "key-no-slot", { deadline: Date.now() + 1_200 }));
    expect(refused.error).toMatchObject({ kind: "rate_limited", mayHaveMinted: false });

    const late = await failure(resilient().createSession(P1, "key-late", { startedAt: Date.now() - 4_900 }));
    expect(late.error).toMatchObject({ kind: "unavailable", mayHaveMinted: false });
    expect(deel.attempts.map((a) => a.key)).toEqual(["key-503", "key-paced"]);
  });
});

describe("late timers", () => {
  it("re-reads the clock after a budget wait: a slot that wakes too late for the reserve sends nothing", async () => {
    // A budget whose timer fires 300 ms after the slot it planned (the latest start the layer allows).
    const late: OutboundBudget = {
      queueDepth: 0,
      close: async () => undefined,
      acquire: (deadline) => new Promise<void>((resolve) => setTimeout(resolve, deadline - Date.now() + 300)),
    };
    const events: DeelEvent[] = [];
    const { error } = await failure(resilient({ budget: late }, events).createSession(P1, "key-late-slot"));
    expect({ kind: error.kind, mayHaveMinted: error.mayHaveMinted }).toEqual({ kind: "unavailable", mayHaveMinted: false });
    expect(error.message).toMatch(/^Too little of the 5000ms deadline was left/);
    expect(deel.attempts).toEqual([]);
    expect(events).toEqual([{ type: "rejected", endpoint: "POST /workers/session", attempt: 1, reason: "deadline" }]);
  });
});
