/**
 * The in-process outbound budget: a rolling window (1 s + margin), FIFO, fail-fast when the slot
 * would come after the deadline, and, against a real sandbox enforcing Deel's 5 rps, no 429.
 */
import { deelFailure } from "../support/deel-errors.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DeelClient } from "../../src/deel/client.js";
import { LocalBudget } from "../../src/deel/local-budget.js";
import { startDeelSandbox } from "../../src/deel/sandbox/server.js";

describe("LocalBudget (fake clock)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("lets rps calls start at once, then spaces the next ones by the window plus margin, in FIFO order", async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const budget = new LocalBudget({ rps: 2, marginMs: 100 });
    const started: Array<{ id: number; at: number }> = [];
    const far = Date.now() + 60_000;
    const calls = [0, 1, 2, 3, 4, 5].map((id) => budget.acquire(far).then(() => started.push({ id, at: Date.now() - 1_000_000 })));
    await vi.advanceTimersByTimeAsync(0);
    expect(started.map((s) => s.id)).toEqual([0, 1]);
    expect(budget.queueDepth).toBe(4);
    await vi.advanceTimersByTimeAsync(1099);
    expect(started).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(started.map((s) => s.id)).toEqual([0, 1, 2, 3]);
    await vi.advanceTimersByTimeAsync(1100);
    await Promise.all(calls);
    expect(started).toEqual([
      { id: 0, at: 0 },
      { id: 1, at: 0 },
      { id: 2, at: 1100 },
      { id: 3, at: 1100 },
      { id: 4, at: 2200 },
      { id: 5, at: 2200 },
    ]);
    expect(budget.queueDepth).toBe(0);
  });

  it("rolls: a full burst is allowed again once the window has passed", async () => {
    vi.useFakeTimers({ now: 5_000 });
    const budget = new LocalBudget({ rps: 3, marginMs: 0 });
    for (let i = 0; i < 3; i += 1) await budget.acquire(Date.now());
    expect(budget.nextSlot()).toBe(6_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(budget.nextSlot()).toBe(6_000);
    for (let i = 0; i < 3; i += 1) await budget.acquire(Date.now());
    expect(budget.queueDepth).toBe(0);
    expect(budget.nextSlot()).toBe(7_000);
  });

  it("fails at once with rate_limited when the slot would come after the deadline, and reserves nothing", async () => {
    vi.useFakeTimers({ now: 0 });
    const budget = new LocalBudget({ rps: 1, marginMs: 100 });
    await budget.acquire(10);
    const waiting = budget.acquire(5_000); // booked for 1100
    const refused = await deelFailure(budget.acquire(2_000)); // would be 2200
    expect(refused.kind).toBe("rate_limited");
    expect(refused.retryAfterSeconds).toBe(3);
    expect(budget.queueDepth).toBe(1);
    // The refusal booked nothing: the next patient caller still gets 2200, not 3300.
    expect(budget.nextSlot()).toBe(2_200);
    await vi.advanceTimersByTimeAsync(1_100);
    await waiting;
  });

  it("derives retryAfterSeconds from how far ahead the queue is booked", async () => {
    vi.useFakeTimers({ now: 0 });
    const budget = new LocalBudget({ rps: 5, marginMs: 0 });
    const booked: Array<Promise<void>> = [];
    for (let i = 0; i < 25; i += 1) booked.push(budget.acquire(60_000)); // 5 per second for 5 seconds
    expect(budget.queueDepth).toBe(20);
    const refused = await deelFailure(budget.acquire(1_000));
    expect(refused.retryAfterSeconds).toBe(5);
    await budget.close();
    await Promise.allSettled(booked);
  });

  it("rejects a waiter whose signal aborts, and every waiter on close, with unavailable", async () => {
    vi.useFakeTimers({ now: 0 });
    const budget = new LocalBudget({ rps: 1 });
    await budget.acquire(60_000);
    const controller = new AbortController();
    const aborted = budget.acquire(60_000, controller.signal);
    const closed = budget.acquire(60_000);
    controller.abort();
    expect((await deelFailure(aborted)).kind).toBe("unavailable");
    expect(budget.queueDepth).toBe(1);
    await budget.close();
    expect((await deelFailure(closed)).kind).toBe("unavailable");
    expect((await deelFailure(budget.acquire(60_000))).kind).toBe("unavailable");
    expect(budget.queueDepth).toBe(0);
  });
});

describe("LocalBudget in front of a sandbox that enforces 5 rps", () => {
  it("paces 15 concurrent calls so that Deel never answers 429", async () => {
    const sandbox = await startDeelSandbox({ rateLimitRps: 5 });
    const client = new DeelClient({ baseUrl: sandbox.url, token: sandbox.orgToken, timeoutMs: 5_000 });
    const budget = new LocalBudget({ rps: 5 });
    try {
      const deadline = Date.now() + 10_000;
      const profiles = sandbox.profiles;
      const results = await Promise.allSettled(
        Array.from({ length: 15 }, async (_, i) => {
          await budget.acquire(deadline);
          return client.createSession(profiles[i % profiles.length] as string, `key-${i}`);
        }),
      );
      expect(results.filter((r) => r.status === "rejected")).toEqual([]);
      expect(sandbox.count({ method: "POST" })).toBe(15);
      expect(sandbox.count({ status: 429 })).toBe(0);
      // Arrival times at Deel: never more than 5 in any rolling second.
      const arrivals = sandbox.requests.map((r) => r.at).sort((a, b) => a - b);
      for (let i = 5; i < arrivals.length; i += 1) expect((arrivals[i] as number) - (arrivals[i - 5] as number)).toBeGreaterThanOrEqual(1000);
    } finally {
      await budget.close();
      await client.close();
      await sandbox.close();
    }
  });
});
