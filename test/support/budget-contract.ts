/**
 * The organization's Deel budget, whatever keeps it (this process, Redis, PostgreSQL): it paces by
 * the moment a call LEAVES, not the moment it was planned. Several budget handles (as separate
 * replicas would hold; one process has one budget, so the local backend hands out the same one)
 * together never let more than `rps` calls leave in any rolling window, even when timers fire late
 * together; a call that cannot get a slot before its deadline fails at once and books nothing; a
 * caller that gives up gives its slot back; an unreachable backend fails the call closed.
 *
 * Only what the budget decides is asserted: when calls left (read as each `acquire` resolves), what
 * it refused, and how long it planned to sleep. Never how fast the host ran. Departures are timed
 * in this process as each call resolves, a little after the budget let it go; the budgets here run
 * with a 300 ms margin (a window of 1.3 s) and are judged over 1 s windows, so that lag (up to
 * 300 ms between two calls, on a loaded host) cannot fake a burst, while a budget that only plans
 * still fails: the calls its late timers release leave within one second of punctual ones.
 */
import { expect, it } from "vitest";
import { systemClock, type Clock } from "../../src/base/clock.js";
import type { OutboundBudget } from "../../src/deel/budget.js";
import { DeelError } from "../../src/deel/errors.js";
import { aRecordingClock } from "./clock.js";
import { maxInAnyWindow } from "./windows.js";

export interface BudgetReplicaOptions {
  /** Added to the 1 s window (`DEEL_RATE_LIMIT_MARGIN_MS`). */
  marginMs: number;
  /** Each handle's clock; one per handle (the local backend, one budget, uses the first). */
  clocks?: Clock[];
}

export interface BudgetOrganization {
  /** `count` handles on this organization's budget, each on its own connection where there is one. */
  replicas(count: number, rps: number, options: BudgetReplicaOptions): Promise<OutboundBudget[]>;
}

export interface BudgetBackend {
  /** A fresh organization (its own budget), cleaned up by the backend after the suite. */
  organization(): BudgetOrganization;
  /** A budget whose backing store cannot be reached; `close` releases it. Absent: nothing to reach. */
  unreachable?: (rps: number, clock: Clock) => { budget: OutboundBudget; close: () => Promise<void> };
}

/** The margin the pacing tests run with: see the module comment. */
const MARGIN_MS = 300;

/** Real time, but every other sleep ends `lateMs` late: timers of a busy or paused host. */
function aLateEveryOtherTimeClock(lateMs: number): Clock {
  let turn = 0;
  return {
    now: () => systemClock.now(),
    sleep: (ms, signal) => systemClock.sleep((turn++ % 2 === 0 ? ms + lateMs : ms), signal),
  };
}

/** Acquires `count` slots round-robin over `budgets`; resolves to when each call left (this process's clock). */
async function departures(budgets: OutboundBudget[], count: number, deadline: number): Promise<number[]> {
  const left: number[] = [];
  await Promise.all(Array.from({ length: count }, (_, i) => budgets[i % budgets.length]!.acquire(deadline).then(() => void left.push(Date.now()))));
  return left;
}

/** Defines the budget's tests for one backend (inside the backend's `describe`). */
export function budgetContract(backend: BudgetBackend): void {
  it("lets three replicas together send at most rps calls in any rolling second, and lets every call go", async () => {
    const rps = 4;
    const budgets = await backend.organization().replicas(3, rps, { marginMs: MARGIN_MS });
    const left = await departures(budgets, 3 * rps, Date.now() + 30_000);
    expect(left).toHaveLength(3 * rps);
    expect(maxInAnyWindow(left, 1000)).toBeLessThanOrEqual(rps);
  });

  it("paces by the moment a call leaves: timers that fire 700 ms late do not leave with punctual ones", async () => {
    const rps = 3;
    // Every other sleep of every replica ends 700 ms late: a batch booked for one window wakes
    // together with the next, punctual batch. Planning alone would let both leave within a second.
    const budgets = await backend.organization().replicas(2, rps, {
      marginMs: MARGIN_MS,
      clocks: [aLateEveryOtherTimeClock(700), aLateEveryOtherTimeClock(700)],
    });
    const left = await departures(budgets, 6 * rps, Date.now() + 60_000);
    expect(left).toHaveLength(6 * rps);
    expect(maxInAnyWindow(left, 1000)).toBeLessThanOrEqual(rps);
  }, 40_000);

  it("fails at once with rate_limited and retryAfterSeconds when no slot fits the deadline, and books nothing", async () => {
    const clock = aRecordingClock(systemClock);
    const [a, b] = await backend.organization().replicas(2, 1, { marginMs: 100, clocks: [clock, clock] });
    await a!.acquire(clock.now() + 1000);
    expect(clock.sleeps).toEqual([]); // an idle budget lets the first call go at once

    const error = await b!.acquire(clock.now() + 300).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DeelError);
    expect(error).toMatchObject({ kind: "rate_limited" });
    // The next slot is one window (1000 ms) plus margin (100 ms) after the first, less the time
    // since: whole seconds, rounded up, never zero.
    expect([1, 2]).toContain((error as DeelError).retryAfterSeconds);
    // At once: it never slept.
    expect(clock.sleeps).toEqual([]);

    // It booked nothing: the next caller gets the slot one window (plus margin) after the first,
    // which a deadline 1.2 s away fits (it would not, were the refused call still booked before it).
    await a!.acquire(clock.now() + 1200);
    expect(clock.sleeps.length).toBeGreaterThanOrEqual(1);
    expect(clock.sleeps[0]).toBeGreaterThan(0);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(1100);
  });

  it("gives back a booked slot when the caller gives up while waiting", async () => {
    const [budget] = await backend.organization().replicas(1, 1, { marginMs: 100 });
    await budget!.acquire(Date.now() + 1000);
    const controller = new AbortController();
    const waiting = budget!.acquire(Date.now() + 5000, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(budget!.queueDepth).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ kind: "unavailable" });
    expect(budget!.queueDepth).toBe(0);
    // Its slot (1.1 s after the first call) is free again: a call whose deadline it fits gets it,
    // where it would otherwise be booked a window later still, past that deadline.
    await expect(budget!.acquire(Date.now() + 1600)).resolves.toBeUndefined();
  });

  if (backend.unreachable !== undefined) {
    const unreachable = backend.unreachable;
    it("fails closed, at once, with unavailable when its store cannot be reached: never an unpaced call", async () => {
      const clock = aRecordingClock(systemClock);
      const { budget, close } = unreachable(5, clock);
      try {
        for (let i = 0; i < 10; i += 1) {
          const error = await budget.acquire(clock.now() + 5000).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toMatchObject({ name: "DeelError", kind: "unavailable" });
        }
        // At once: no call waited for anything.
        expect(clock.sleeps).toEqual([]);
      } finally {
        await close();
      }
    });
  }
}
