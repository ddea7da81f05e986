/**
 * The organization's shared Deel budget, whatever keeps it (Redis, PostgreSQL): several budget
 * instances, each on its own connection (as separate replicas would be), together never start more
 * than `rps` calls in any rolling window; a call that cannot get a slot before its deadline fails at
 * once; a caller that gives up gives its slot back; an unreachable backend fails the call closed.
 * The slots are read where they are kept (on that server's clock), and the replicas' waits from the
 * clock they were given: nothing here depends on how fast the host is.
 */
import { expect, it } from "vitest";
import { systemClock, type Clock } from "../../src/base/clock.js";
import type { OutboundBudget } from "../../src/deel/budget.js";
import { DeelError } from "../../src/deel/errors.js";
import { aRecordingClock } from "./clock.js";
import { maxInAnyWindow } from "./windows.js";

export interface BudgetOrganization {
  /** `count` replicas' budgets on this organization's window, each on its own connection. */
  replicas(count: number, rps: number, options?: { windowMs?: number; clock?: Clock }): Promise<OutboundBudget[]>;
  /** The slots reserved in the organization's window, on the server's clock, ascending. */
  slots(): Promise<number[]>;
}

export interface BudgetBackend {
  /** A fresh organization (its own window), cleaned up by the backend after the suite. */
  organization(): BudgetOrganization;
  /** A budget whose backing store cannot be reached; `close` releases it. */
  unreachable(rps: number, clock: Clock): { budget: OutboundBudget; close: () => Promise<void> };
}

/** Defines the shared budget's tests for one backend (inside the backend's `describe`). */
export function budgetContract(backend: BudgetBackend): void {
  it("lets three replicas together start at most rps calls in any rolling window, and no fewer than it allows", async () => {
    const rps = 10;
    // A one-minute window and replicas whose sleeps end at once: every reservation reaches the server
    // well inside the first window however slow the host, and nobody waits for real.
    const windowMs = 60_000;
    const spacing = windowMs + 100;
    let skipped = 0;
    const clock: Clock = {
      now: () => Math.max(systemClock.now(), skipped),
      // A sleep moves the time straight to its end.
      sleep: async (ms) => void (skipped = Math.max(skipped, clock.now() + ms)),
    };
    const org = backend.organization();
    const budgets = await org.replicas(3, rps, { windowMs, clock });
    const deadline = clock.now() + 10 * spacing;
    await Promise.all(Array.from({ length: 30 }, (_, i) => budgets[i % 3]!.acquire(deadline)));
    const reserved = await org.slots();
    expect(reserved).toHaveLength(30);
    expect(maxInAnyWindow(reserved, spacing)).toBeLessThanOrEqual(rps);
    // Pacing, not starvation: each slot comes exactly one window (plus margin) after the one rps before it.
    for (let i = rps; i < reserved.length; i += 1) expect(reserved[i]! - reserved[i - rps]!).toBe(spacing);
  });

  it("fails at once with rate_limited and retryAfterSeconds when no slot fits the deadline, and reserves nothing", async () => {
    const org = backend.organization();
    const clock = aRecordingClock(systemClock);
    const [a, b] = await org.replicas(2, 2, { clock });
    await a!.acquire(clock.now() + 1000);
    await b!.acquire(clock.now() + 1000);
    expect(await org.slots()).toHaveLength(2);

    const error = await b!.acquire(clock.now() + 300).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DeelError);
    expect(error).toMatchObject({ kind: "rate_limited" });
    // The next slot is one window (1000 ms) plus margin (100 ms) after the first, less the time the
    // reservations took: whole seconds, rounded up, never zero.
    expect([1, 2]).toContain((error as DeelError).retryAfterSeconds);
    // At once: it never slept, and it booked nothing.
    expect(clock.sleeps).toEqual([]);
    expect(await org.slots()).toHaveLength(2);

    // A deadline the next slot fits in: it sleeps until that slot, one window (plus margin) after the first.
    await a!.acquire(clock.now() + 2000);
    expect(clock.sleeps).toHaveLength(1);
    const [first, , third] = await org.slots();
    expect(third! - first!).toBe(1100);
  });

  it("gives back a reserved slot when the caller gives up while waiting", async () => {
    const org = backend.organization();
    const [budget] = await org.replicas(1, 1);
    await budget!.acquire(Date.now() + 1000);
    const controller = new AbortController();
    const waiting = budget!.acquire(Date.now() + 5000, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(budget!.queueDepth).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ kind: "unavailable" });
    expect(budget!.queueDepth).toBe(0);
    expect(await org.slots()).toHaveLength(1);
  });

  it("fails closed, at once, with unavailable when its store cannot be reached: never an unpaced call", async () => {
    const clock = aRecordingClock(systemClock);
    const { budget, close } = backend.unreachable(5, clock);
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
