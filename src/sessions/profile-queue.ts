/**
 * Runs tasks one at a time per key, in arrival order; tasks on different keys run concurrently.
 * The gateway uses it so that concurrent creates and revokes on one profile reach Deel and the
 * ledger in the same order, and the ledger ends in Deel's state. Each task gets the queue's fence,
 * which always holds: in a deployment ordered by this queue, the process is each profile's only writer.
 */
import { QUEUE_FENCE, type Fence } from "./fencing.js";
import type { ProfileLock } from "./profile-lock.js";

export class ProfileQueue implements ProfileLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: (fence: Fence) => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const start = () => task(QUEUE_FENCE);
    const result = previous.then(start, start);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      // Forget the key once nothing else has queued behind this task.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  async close(): Promise<void> {
    await Promise.all(this.tails.values());
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
