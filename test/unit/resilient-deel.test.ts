/**
 * The resilience layer (deadline, retries, budget, breaker) around a real DeelClient, against a real
 * sandbox over HTTP with its fault switches. Attempts are counted at the sandbox, with the
 * Idempotency-Key each one carried.
 */
import { deelFailure } from "../support/deel-errors.js";
import { Pool } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DeelClient } from "../../src/deel/client.js";
import { DeelError } from "../../src/deel/errors.js";
import { LocalBudget } from "../../src/deel/local-budget.js";
import { ResilientDeel, type DeelEvent, type ResilientDeelOptions } from "../../src/deel/resilient.js";
import { startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";

let sandbox: DeelSandbox;
let client: DeelClient;
let P1: string;
let P2: string;
const budgets: LocalBudget[] = [];

beforeAll(async () => {
  sandbox = await startDeelSandbox({ rateLimitRps: 0 });
  client = new DeelClient({ baseUrl: sandbox.url, token: sandbox.orgToken, timeoutMs: 10_000 });
  [P1, P2] = sandbox.profiles as [string, string];
});
afterAll(async () => {
  await client.close();
  await sandbox.close();
});
afterEach(async () => {
  sandbox.reset();
  for (const budget of budgets.splice(0)) await budget.close();
});

/** A layer with test-friendly defaults: fast, jitter-free backoff. */
function resilient(options: Partial<ResilientDeelOptions> = {}, events: DeelEvent[] = []): ResilientDeel {
  return new ResilientDeel(client, {
    timeoutMs: 5_000,
    budget: null,
    retryBaseMs: 20,
    random: () => 0.5,
    onEvent: (event) => events.push(event),
    ...options,
  });
}

function budget(rps: number): LocalBudget {
  const made = new LocalBudget({ rps });
  budgets.push(made);
  return made;
}

function posts(): Array<{ key: string | undefined; status: number; at: number }> {
  return sandbox.requests.filter((r) => r.method === "POST").map((r) => ({ key: r.idempotencyKey, status: r.status, at: r.at }));
}

describe("retries", () => {
  it("retries a DELETE that met one 503: exactly 2 DELETEs, then success", async () => {
    sandbox.injectFault({ kind: "status", status: 503 }, { times: 1, method: "DELETE" });
    await expect(resilient().revokeSession(P1)).resolves.toEqual({});
    expect(sandbox.requests.map((r) => [r.method, r.status])).toEqual([
      ["DELETE", 503],
      ["DELETE", 204],
    ]);
  });

  it("retries a POST that met one 500 with the same Idempotency-Key, and mints one token", async () => {
    sandbox.injectFault({ kind: "status", status: 500 }, { times: 1, method: "POST" });
    const minted = await resilient().createSession(P1, "key-500");
    expect(posts().map(({ key, status }) => ({ key, status }))).toEqual([
      { key: "key-500", status: 500 },
      { key: "key-500", status: 201 },
    ]);
    expect(minted.token).toBe(sandbox.state(P1)?.token);
  });

  it("retries a broken connection (socket reset) with the same key", async () => {
    sandbox.injectFault({ kind: "reset" }, { times: 2 });
    const minted = await resilient().createSession(P2, "key-reset");
    expect(posts().map(({ key, status }) => ({ key, status }))).toEqual([
      { key: "key-reset", status: 0 },
      { key: "key-reset", status: 0 },
      { key: "key-reset", status: 201 },
    ]);
    expect(minted.token).toBe(sandbox.state(P2)?.token);
  });

  it("gives up after maxAttempts on a persistent 5xx, as unavailable", async () => {
    sandbox.injectFault({ kind: "status", status: 502 });
    const error = await deelFailure(resilient({ maxAttempts: 4 }).createSession(P1, "key-502"));
    expect(error.kind).toBe("unavailable");
    expect(error.status).toBe(502);
    expect(posts().map((p) => p.key)).toEqual(["key-502", "key-502", "key-502", "key-502"]);
  });

  it.each([400, 401, 403, 404])("never retries a %i", async (status) => {
    sandbox.injectFault({ kind: "status", status });
    await deelFailure(resilient().createSession(P1, "key-4xx"));
    await deelFailure(resilient().revokeSession(P1));
    expect(sandbox.requests.map((r) => r.status)).toEqual([status, status]);
  });

  it("backs off exponentially with jitter between attempts", async () => {
    sandbox.injectFault({ kind: "status", status: 500 });
    const events: DeelEvent[] = [];
    const randoms = [0, 0.999];
    await deelFailure(resilient({ retryBaseMs: 200, random: () => randoms.shift() ?? 0 }, events).revokeSession(P1));
    const waits = events.flatMap((e) => (e.type === "attempt_end" && e.retryInMs !== undefined ? [e.retryInMs] : []));
    // attempt 1: between 100 and 200 ms (random 0 → 100); attempt 2: between 200 and 400 (random ≈1 → 400).
    expect(waits).toEqual([100, 400]);
    // Timers can fire some tens of ms early on a loaded machine (libuv's cached loop time).
    const [a, b, c] = sandbox.requests.map((r) => r.at) as [number, number, number];
    expect(b - a).toBeGreaterThanOrEqual(50);
    expect(c - b).toBeGreaterThanOrEqual(300);
  });
});

describe("Deel's 429", () => {
  it("honours Retry-After: 1 when it fits in the deadline, and succeeds with the same key", async () => {
    sandbox.injectFault({ kind: "rate_limit", retryAfterSeconds: 1 }, { times: 1 });
    const started = performance.now();
    await resilient().createSession(P1, "key-429");
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5_000);
    const [first, second] = posts() as [{ key: string; status: number; at: number }, { key: string; status: number; at: number }];
    expect([first.status, second.status]).toEqual([429, 201]);
    expect(second.key).toBe(first.key);
    expect(second.at - first.at).toBeGreaterThanOrEqual(900);
  });

  it("answers rate_limited at once, with Deel's retryAfterSeconds, when Retry-After does not fit", async () => {
    sandbox.injectFault({ kind: "rate_limit", retryAfterSeconds: 60 });
    const started = performance.now();
    const error = await deelFailure(resilient().createSession(P1, "key-60"));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error.kind).toBe("rate_limited");
    expect(error.retryAfterSeconds).toBe(60);
    expect(posts()).toHaveLength(1);
  });

  it("answers rate_limited with an integer retryAfterSeconds ≥ 1 when retries of a header-less 429 run out", async () => {
    sandbox.injectFault({ kind: "rate_limit" });
    const error = await deelFailure(resilient().revokeSession(P1));
    expect(error.kind).toBe("rate_limited");
    expect(Number.isInteger(error.retryAfterSeconds)).toBe(true);
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(sandbox.count({ method: "DELETE", status: 429 })).toBe(3);
  });
});

describe("the deadline", () => {
  it("ends a hanging call within the deadline plus a small margin, aborting the request", async () => {
    sandbox.injectFault({ kind: "hang" });
    const pool = new Pool(new URL(sandbox.url).origin, { connections: 2 });
    const own = new DeelClient({ baseUrl: sandbox.url, token: sandbox.orgToken, timeoutMs: 10_000, dispatcher: pool });
    try {
      const started = performance.now();
      const error = await deelFailure(new ResilientDeel(own, { timeoutMs: 500, budget: null }).createSession(P1, "key-hang"));
      const elapsed = performance.now() - started;
      expect(error.kind).toBe("unavailable");
      expect(elapsed).toBeGreaterThanOrEqual(350);
      expect(elapsed).toBeLessThan(1_500);
      // No retry: nothing of the deadline was left for one.
      expect(posts()).toHaveLength(1);
      // Nothing left hanging: the undici request was aborted, not merely abandoned (the pool's
      // bookkeeping settles on a later tick).
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(pool.stats.running).toBe(0);
      expect(pool.stats.pending).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it("never starts a backoff that would outlive the deadline", async () => {
    sandbox.injectFault({ kind: "status", status: 503 });
    const started = performance.now();
    const error = await deelFailure(resilient({ timeoutMs: 800, retryBaseMs: 2_000 }).revokeSession(P1));
    expect(performance.now() - started).toBeLessThan(800);
    expect(error.kind).toBe("unavailable");
    expect(sandbox.count({ method: "DELETE" })).toBe(1);
  });

  it("counts from startedAt: a call that queued past its deadline fails without reaching Deel", async () => {
    const error = await deelFailure(resilient({ timeoutMs: 1_000 }).createSession(P1, "key-late", { startedAt: Date.now() - 1_000 }));
    expect(error.kind).toBe("unavailable");
    expect(sandbox.requests).toHaveLength(0);
  });

  it("passes what is left of the deadline to each attempt", async () => {
    sandbox.injectFault({ kind: "status", status: 500 }, { times: 1 });
    sandbox.injectFault({ kind: "hang" });
    const started = performance.now();
    const error = await deelFailure(resilient({ timeoutMs: 700 }).createSession(P1, "key-left"));
    expect(error.kind).toBe("unavailable");
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(posts().map((p) => p.status)).toEqual([500, 0]);
  });
});

describe("bad answers from Deel", () => {
  it("a non-JSON body is unavailable, and the error never carries the body", async () => {
    sandbox.injectFault({ kind: "non_json" });
    const error = await deelFailure(resilient().createSession(P1, "key-html"));
    expect(error.kind).toBe("unavailable");
    expect(`${error.message} ${String(error.cause)}`).not.toMatch(/<html|upstream trouble/i);
  });

  it("retries a garbled 201 once, with the same key, then gives up as bad_response", async () => {
    sandbox.injectFault({ kind: "raw", status: 201, body: '{"data":{"token":"abc"' });
    const error = await deelFailure(resilient({ maxAttempts: 5 }).createSession(P1, "key-trunc"));
    expect(error.kind).toBe("bad_response");
    expect(error.message).not.toContain("abc");
    expect(posts().map((p) => p.key)).toEqual(["key-trunc", "key-trunc"]);
  });

  it("recovers when the garbled 201 was a one-off", async () => {
    sandbox.injectFault({ kind: "raw", status: 201, body: JSON.stringify({ data: { expires_at: "2030-01-01T00:00:00Z" } }) }, { times: 1 });
    const minted = await resilient().createSession(P1, "key-notoken");
    expect(minted.token).toBe(sandbox.state(P1)?.token);
    expect(posts().map((p) => p.status)).toEqual([201, 201]);
  });

  it("never retries an unexpected 4xx (e.g. 422)", async () => {
    sandbox.injectFault({ kind: "status", status: 422 });
    const error = await deelFailure(resilient().createSession(P1, "key-422"));
    expect(error.kind).toBe("bad_response");
    expect(posts()).toHaveLength(1);
  });
});

describe("the outbound budget", () => {
  it("takes a slot before every attempt, retries included", async () => {
    sandbox.injectFault({ kind: "status", status: 503 }, { times: 1 });
    const layer = resilient({ budget: budget(1) });
    await layer.revokeSession(P1);
    const [first, second] = sandbox.requests.map((r) => r.at) as [number, number];
    // One call per 1.1 s: the retry waited for the next slot, not just its 20 ms backoff.
    expect(second - first).toBeGreaterThanOrEqual(1_000);
  });

  it("fails a call at once with rate_limited when no slot can start before its deadline", async () => {
    const layer = resilient({ budget: budget(1), timeoutMs: 800 });
    const events: DeelEvent[] = [];
    layer.observe((event) => events.push(event));
    const started = performance.now();
    const [ok, refused] = await Promise.allSettled([layer.createSession(P1, "key-a"), layer.createSession(P2, "key-b")]);
    expect(ok.status).toBe("fulfilled");
    expect(refused.status).toBe("rejected");
    const error = (refused as PromiseRejectedResult).reason as DeelError;
    expect(error.kind).toBe("rate_limited");
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(performance.now() - started).toBeLessThan(800);
    expect(posts().map((p) => p.key)).toEqual(["key-a"]);
    expect(events).toContainEqual({ type: "rejected", endpoint: "POST /workers/session", attempt: 1, reason: "budget" });
  });

  it("reports the calls waiting for a slot", async () => {
    const layer = resilient({ budget: budget(1) });
    const calls = [layer.revokeSession(P1), layer.revokeSession(P2)];
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(layer.budgetQueueDepth).toBe(1);
    await Promise.all(calls);
    expect(layer.budgetQueueDepth).toBe(0);
  });
});

describe("the circuit breaker", () => {
  it("opens after repeated failures so that 40 calls reach Deel only a few times, then lets traffic back in", async () => {
    sandbox.injectFault({ kind: "status", status: 500 });
    const events: DeelEvent[] = [];
    const layer = resilient({ breakerThreshold: 5, breakerCooldownMs: 300 }, events);
    const profiles = sandbox.profiles;
    // 40 calls in 5 lanes, as the gateway's per-profile ordering would send them for 5 profiles.
    const results = (
      await Promise.all(
        profiles.map(async (profile, lane) => {
          const outcomes: Array<PromiseSettledResult<unknown>> = [];
          for (let i = 0; i < 8; i += 1) {
            outcomes.push(...(await Promise.allSettled([layer.createSession(profile, `key-${lane}-${i}`)])));
          }
          return outcomes;
        }),
      )
    ).flat();
    expect(results).toHaveLength(40);
    expect(results.every((r) => r.status === "rejected" && (r.reason as DeelError).kind === "unavailable")).toBe(true);
    // Up to 3 attempts each, but the breaker opens after 5 failures; a retry already under way when
    // it opened may add one or two.
    expect(sandbox.requests.length).toBeGreaterThanOrEqual(5);
    expect(sandbox.requests.length).toBeLessThanOrEqual(8);
    expect(layer.breakerState).toBe("open");

    // Still down after the cooldown: the one probe fails and the circuit opens again.
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(layer.breakerState).toBe("half_open");
    const before = sandbox.requests.length;
    const during = await Promise.allSettled([layer.revokeSession(P1), layer.revokeSession(P2)]);
    expect(during.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(sandbox.requests.length - before).toBe(1);
    expect(layer.breakerState).toBe("open");

    // Deel recovers: after the cooldown, the probe succeeds and the circuit closes.
    sandbox.clearFaults();
    await new Promise((resolve) => setTimeout(resolve, 350));
    await expect(layer.createSession(P1, "key-back")).resolves.toMatchObject({ replayed: false });
    expect(layer.breakerState).toBe("closed");
    await expect(layer.revokeSession(P1)).resolves.toEqual({});

    const transitions = events.flatMap((e) => (e.type === "breaker" ? [`${e.from}>${e.to}`] : []));
    expect(transitions).toEqual(["closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed"]);
    expect(events.filter((e) => e.type === "rejected" && e.reason === "breaker_open").length).toBeGreaterThan(20);
  });

  it("releases callers waiting for a budget slot as soon as the circuit opens (no stampede)", async () => {
    sandbox.injectFault({ kind: "status", status: 500 });
    const layer = resilient({ budget: budget(5), breakerThreshold: 5 });
    const started = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => layer.createSession(sandbox.profiles[i % 5] as string, `stampede-${i}`)),
    );
    // The first 5 take the budget's burst and fail; the circuit opens, and everybody queued behind
    // them is answered at once instead of at their slot.
    expect(sandbox.requests).toHaveLength(5);
    expect(performance.now() - started).toBeLessThan(1_000);
    const kinds = results.map((r) => (r.status === "rejected" ? (r.reason as DeelError).kind : "ok"));
    expect(new Set(kinds)).toEqual(new Set(["unavailable", "rate_limited"]));
    expect(layer.budgetQueueDepth).toBe(0);
  });

  it("does not count 4xx answers (nor 429) as failures", async () => {
    sandbox.injectFault({ kind: "status", status: 404 });
    const layer = resilient({ breakerThreshold: 2, maxAttempts: 1 });
    for (let i = 0; i < 5; i += 1) expect((await deelFailure(layer.revokeSession(P1))).kind).toBe("not_found");
    sandbox.clearFaults();
    sandbox.injectFault({ kind: "rate_limit", retryAfterSeconds: 60 });
    for (let i = 0; i < 5; i += 1) expect((await deelFailure(layer.revokeSession(P1))).kind).toBe("rate_limited");
    expect(layer.breakerState).toBe("closed");
    expect(sandbox.requests).toHaveLength(10);
  });

  it("counts timeouts and connection errors as failures", async () => {
    sandbox.injectFault({ kind: "reset" });
    const layer = resilient({ breakerThreshold: 2, maxAttempts: 1 });
    await deelFailure(layer.revokeSession(P1));
    await deelFailure(layer.revokeSession(P1));
    expect(layer.breakerState).toBe("open");
    const error = await deelFailure(layer.revokeSession(P1));
    expect(error.message).toMatch(/Circuit open/);
    expect(sandbox.requests).toHaveLength(2);
  });
});

describe("observability", () => {
  it("reports each attempt with its endpoint, status, duration and the wait before the retry", async () => {
    sandbox.injectFault({ kind: "status", status: 503 }, { times: 1 });
    const events: DeelEvent[] = [];
    await resilient({}, events).revokeSession(P1);
    expect(events).toEqual([
      { type: "attempt_start", endpoint: "DELETE /workers/{profile_id}/session", attempt: 1, budgetWaitMs: expect.any(Number) },
      {
        type: "attempt_end",
        endpoint: "DELETE /workers/{profile_id}/session",
        attempt: 1,
        outcome: "unavailable",
        status: 503,
        durationMs: expect.any(Number),
        retryInMs: 15,
      },
      { type: "attempt_start", endpoint: "DELETE /workers/{profile_id}/session", attempt: 2, budgetWaitMs: expect.any(Number) },
      { type: "attempt_end", endpoint: "DELETE /workers/{profile_id}/session", attempt: 2, outcome: "ok", status: 204, durationMs: expect.any(Number) },
    ]);
  });

  it("survives an observer that throws", async () => {
    const layer = resilient();
    layer.observe(() => {
      throw new Error("observer bug");
    });
    await expect(layer.revokeSession(P1)).resolves.toEqual({});
  });
});
