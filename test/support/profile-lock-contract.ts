/**
 * Per-profile ordering across replicas, whatever keeps the locks (Redis, PostgreSQL): two
 * serializers on separate connections ("replicas") never run tasks for one profile at the same time,
 * take turns fairly, keep the lock through a slow task, fence off a holder that outlived its lock,
 * give up with `busy`, and fail fast when their store is away. Every check is on order and fences,
 * never on how long something took.
 */
import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import type { Fence } from "../../src/sessions/fencing.js";
import type { ProfileLock } from "../../src/sessions/profile-lock.js";
import type { SessionRecord } from "../../src/sessions/record.js";
import type { SessionStore } from "../../src/sessions/store.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface LockReplicaOptions {
  /** The lock's lifetime where it has one (Redis); renewed while the task runs. */
  lockTtlMs?: number;
  acquireTimeoutMs?: number;
  /** After this long a holder no longer keeps its lock (0: it loses it at once, as in a long pause). */
  maxHoldMs?: number;
}

export interface LockReplica {
  lock: ProfileLock;
  /** The ledger this replica writes, on the same backend. */
  store: SessionStore;
}

export interface LockBackend {
  replica(options?: LockReplicaOptions): Promise<LockReplica>;
  /** After a waiter gave up on `profileId`: checks it left no trace that would hold up the next one. */
  leftNoWaiter?(profileId: string): Promise<void>;
  /** A lock whose store cannot be reached; `close` releases it. */
  unreachable(): { lock: ProfileLock; close: () => Promise<void> };
}

function record(profileId: string, createdBy: string): SessionRecord {
  return { profileId, createdAt: new Date(), expiresAt: new Date(Date.now() + 3600_000), revokedAt: null, createdBy, revokedBy: null };
}

/** Defines the ordering tests for one backend (inside the backend's `describe`). */
export function profileLockContract(backend: LockBackend): void {
  it("never runs two tasks for one profile at once, across replicas, and alternates between them", async () => {
    const a = await backend.replica();
    const b = await backend.replica();
    const profileId = randomUUID();
    let inside = 0;
    let most = 0;
    const order: string[] = [];
    const task = (name: string) => async () => {
      inside += 1;
      most = Math.max(most, inside);
      await sleep(10);
      order.push(name);
      inside -= 1;
    };
    await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).lock.run(profileId, task(i % 2 === 0 ? "A" : "B"))));
    expect(most).toBe(1);
    expect(order).toHaveLength(16);
    // Fair: neither replica runs all of its queue while the other waits.
    const switches = order.filter((name, i) => i > 0 && name !== order[i - 1]).length;
    expect(switches).toBeGreaterThanOrEqual(8);
    // Different profiles do not wait for each other: each task finishes only once the other has
    // started, which two tasks run one after the other never would.
    let release = () => undefined as void;
    const bothStarted = new Promise<void>((resolve) => {
      let started = 0;
      release = () => {
        started += 1;
        if (started === 2) resolve();
      };
    });
    const meeting = async () => {
      release();
      await bothStarted;
    };
    await Promise.all([a.lock.run(randomUUID(), meeting), b.lock.run(randomUUID(), meeting)]);
  });

  it("keeps the lock while a slow task runs past the lock's TTL (renewal)", async () => {
    const a = await backend.replica({ lockTtlMs: 300 });
    const b = await backend.replica({ lockTtlMs: 300 });
    const profileId = randomUUID();
    const events: string[] = [];
    const fences: Fence[] = [];
    const slow = a.lock.run(profileId, async (fence) => {
      fences.push(fence);
      events.push("a starts");
      await sleep(900);
      events.push("a ends");
    });
    await sleep(50);
    await b.lock.run(profileId, async (fence) => {
      fences.push(fence);
      events.push("b starts");
    });
    await slow;
    expect(events).toEqual(["a starts", "a ends", "b starts"]);
    // One acquisition each, in that order: a renewal is no new turn.
    const [first, second] = fences as [Fence & { token: number }, Fence & { token: number }];
    expect(second.token).toBe(first.token + 1);
  });

  it("fences off a holder that outlived its lock: its ledger write is refused and the newer state stays", async () => {
    // The hold ends at once (maxHoldMs 0): a replica paused past its lock, as in a long GC pause.
    const a = await backend.replica({ lockTtlMs: 200, maxHoldMs: 0 });
    const b = await backend.replica({ lockTtlMs: 200 });
    const profileId = randomUUID();
    const stale = a.lock.run(profileId, async (fence) => {
      await sleep(500);
      await a.store.put(record(profileId, "stale-replica"), fence);
    });
    await sleep(250);
    await b.lock.run(profileId, (fence) => b.store.put(record(profileId, "newer-replica"), fence));
    await expect(stale).rejects.toMatchObject({ name: "LedgerError", kind: "fenced" });
    expect((await b.store.get(profileId))?.createdBy).toBe("newer-replica");
  });

  it("gives up with LedgerError busy when the lock stays taken past the wait", async () => {
    const a = await backend.replica();
    const b = await backend.replica({ acquireTimeoutMs: 200 });
    const profileId = randomUUID();
    const holding = a.lock.run(profileId, () => sleep(700));
    await sleep(30);
    let ran = false;
    await expect(
      b.lock.run(profileId, async () => {
        ran = true;
      }),
    ).rejects.toMatchObject({ name: "LedgerError", kind: "busy" });
    expect(ran).toBe(false);
    // The one that gave up left the line: the next caller is not held behind a ghost.
    await backend.leftNoWaiter?.(profileId);
    await holding;
    await expect(b.lock.run(profileId, async () => "next")).resolves.toBe("next");
  });

  it("fails fast with LedgerError unavailable, without running the task, when its store cannot be reached", async () => {
    const { lock, close } = backend.unreachable();
    try {
      let ran = false;
      await expect(
        lock.run(randomUUID(), async () => {
          ran = true;
        }),
      ).rejects.toMatchObject({ name: "LedgerError", kind: "unavailable" });
      expect(ran).toBe(false);
    } finally {
      await close();
    }
  });
}
