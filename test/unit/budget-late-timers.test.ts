/**
 * The in-process budget paces by the moment a call leaves, not the moment it was booked: timers that
 * fire late (a busy host, a paused process) fire together, and still no window holds more than `rps`
 * departures. The clock is moved by hand, in jumps, as a frozen event loop sees it.
 */
import { describe, expect, it } from "vitest";
import { LocalBudget } from "../../src/deel/local-budget.js";
import { aManualClock } from "../support/clock.js";
import { deelFailure } from "../support/deel-errors.js";
import { maxInAnyWindow } from "../support/windows.js";

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("LocalBudget under late timers", () => {
  it("lets a batch woken 700 ms late leave, and holds the next batch until a full window after it", async () => {
    const clock = aManualClock(0);
    const budget = new LocalBudget({ rps: 5, marginMs: 100, clock });
    const left: number[] = [];
    const calls = Array.from({ length: 15 }, () => budget.acquire(60_000).then(() => left.push(clock.now())));
    await settle();
    expect(left).toEqual([0, 0, 0, 0, 0]);
    // Frozen from 1000 to 1800: the batch booked for 1100 wakes at 1800, all at once.
    clock.advance(1_800);
    await settle();
    expect(left.slice(5)).toEqual([1_800, 1_800, 1_800, 1_800, 1_800]);
    // The batch booked for 2200 wakes on time but must not leave within a window of the late one.
    clock.advance(400);
    await settle();
    expect(left).toHaveLength(10);
    for (let i = 0; i < 20 && left.length < 15; i += 1) {
      clock.advanceToNext();
      await settle();
    }
    await Promise.all(calls);
    expect(left.slice(10)).toEqual([2_900, 2_900, 2_900, 2_900, 2_900]);
    expect(maxInAnyWindow(left, 1_100)).toBeLessThanOrEqual(5);
  });

  it("fails a woken call with rate_limited when the departures push its start past its deadline", async () => {
    const clock = aManualClock(0);
    const budget = new LocalBudget({ rps: 1, marginMs: 100, clock });
    await budget.acquire(60_000);
    const late = budget.acquire(60_000); // booked for 1100
    const tight = budget.acquire(2_500); // booked for 2200
    clock.advance(2_300); // both wake together: the first leaves at 2300, the second could only at 3400
    const refused = await deelFailure(tight);
    await late;
    expect(refused).toMatchObject({ kind: "rate_limited", retryAfterSeconds: 2 });
    expect(budget.queueDepth).toBe(0);
  });
});
