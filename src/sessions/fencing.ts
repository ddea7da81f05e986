/**
 * Fences: what a ledger write carries to prove that its writer still holds the profile's turn.
 *
 * `ProfileLock.run(profileId, (fence) => task)` hands each task its fence, and the task passes it to
 * every ledger write it makes for that profile. The Redis lock's fence is the profile's fencing
 * counter as this holder's acquisition left it: the write is a condition of the same conditional
 * write, refused (LedgerError `fenced`) once a later holder has taken the lock, so a holder paused
 * past its lock's expiry cannot overwrite what the next one recorded. The in-process queue's fence
 * always holds: nothing else writes the profile's state in that deployment.
 *
 * A write outside any profile's turn (a test seeding a ledger, an operator's tool) says so with
 * `unfenced(why)`: never a default, always a choice that reads as one.
 */

/** The fence of a turn given by the Redis lock: the profile's fencing counter when the turn began. */
export interface TokenFence {
  readonly kind: "token";
  readonly profileId: string;
  readonly token: number;
}

/** The fence of a turn given by the in-process queue: the process is the profile's only writer. */
export interface QueueFence {
  readonly kind: "queue";
}

/** A deliberate write outside any profile's turn; `reason` says why (for the reader of the call). */
export interface Unfenced {
  readonly kind: "unfenced";
  readonly reason: string;
}

/** What a `ProfileLock` hands a task. */
export type Fence = TokenFence | QueueFence;

/** What every ledger write takes. */
export type WriteFence = Fence | Unfenced;

/** The in-process queue's fence (it always holds). */
export const QUEUE_FENCE: QueueFence = Object.freeze({ kind: "queue" });

/** Marks a ledger write as made outside any profile's turn, on purpose. */
export function unfenced(reason: string): Unfenced {
  return { kind: "unfenced", reason };
}
