/**
 * Fencing tokens between the cross-replica lock and the Redis store, without widening the
 * `SessionStore` interface: the lock runs each task inside an async context that carries the
 * profile and the fencing token it was granted with the lock, and the store's writes for that
 * profile send the token along, so that Redis refuses a write from a holder whose lock has since
 * passed to someone else (see redis-lock.ts).
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface Fence {
  profileId: string;
  /** The value of the profile's fence counter when this holder took the lock. */
  token: number;
}

const storage = new AsyncLocalStorage<Fence>();

/** Runs `task` with `fence` as the current fence for its profile. */
export function runFenced<T>(fence: Fence, task: () => Promise<T>): Promise<T> {
  return storage.run(fence, task);
}

/** The fencing token of the task running now, if it holds the lock of `profileId`. */
export function currentFence(profileId: string): number | undefined {
  const fence = storage.getStore();
  return fence !== undefined && fence.profileId === profileId ? fence.token : undefined;
}
