/**
 * The in-process outbound budget on vitest's fake clock: a rolling window (1 s + margin), FIFO,
 * fail-fast when the slot would come after the deadline. Against a real sandbox enforcing Deel's
 * 5 rps, see test/integration/deel-over-http.test.ts.
 */
import { deelFailure } from "../support/deel-errors.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Clock } from "../../src/base/clock.js";
import { LocalBudget } from "../../src/deel/local-budget.js";

describe("LocalBudget (fake clock)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("at Deel's 5 rps, lets the 6th call depart exactly one window plus the margin after the first", async () => {
    vi.useFakeTimers({ now: 0 });
    const budget = new LocalBudget({ rps: 5, marginMs: 100 });
    const departures: number[] = [];
    const calls = Array.from({ length: 6 }, () => budget.acquire(60_000).then(() => departures.push(Date.now())));
    await vi.advanceTimersByTimeAsync(1_099);
    expect(departures).toEqual([0, 0, 0, 0, 0]);
    await vi.advanceTimersByTimeAsync(1);
    await Promise.all(calls);
    expect(departures).toEqual([0, 0, 0, 0, 0, 1_100]);
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

  it("keeps its time on the clock it is given", async () => {
    let time = 0;
    const sleeps: number[] = [];
    const clock: Clock = {
      now: () => time,
      sleep: (ms) => {
        sleeps.push(ms);
        time += ms;
        return Promise.resolve();
      },
    };
    const budget = new LocalBudget({ rps: 1, marginMs: 100, clock });
    await budget.acquire(10_000);
    await budget.acquire(10_000);
    await budget.acquire(10_000);
    expect(sleeps).toEqual([1_100, 1_100]);
    expect(budget.nextSlot()).toBe(3_300);
  });

  it("reads the clock when it wakes: a timer that fires early sleeps the rest, never starts the call before its slot", async () => {
    let time = 0;
    const sleeps: number[] = [];
    const clock: Clock = {
      now: () => time,
      // Wakes 100 ms early whenever it can.
      sleep: (ms) => {
        sleeps.push(ms);
        time += ms > 100 ? ms - 100 : ms;
        return Promise.resolve();
      },
    };
    const budget = new LocalBudget({ rps: 1, marginMs: 100, clock });
    await budget.acquire(10_000);
    await budget.acquire(10_000);
    expect(sleeps).toEqual([1_100, 100]);
    expect(time).toBe(1_100);
  });
});
