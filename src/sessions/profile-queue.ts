/**
 * Runs tasks one at a time per key, in arrival order; tasks on different keys run concurrently.
 * The gateway uses it so that concurrent creates and revokes on one profile reach Deel and the
 * ledger in the same order, and the ledger ends in Deel's state. Each task gets the queue's fence,
 * which always holds: in a deployment ordered by this queue, the process is each profile's only writer.
 */
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import { LedgerError } from "./errors.js";
import { QUEUE_FENCE, type Fence } from "./fencing.js";
import type { ProfileLock } from "./profile-lock.js";

/** The wait for a turn ran past its deadline (see `ProfileLock`). */
export function turnTooLate(key: string): LedgerError {
  return new LedgerError("busy", `Another operation on profile ${key} held its turn past this operation's deadline`);
}

export class ProfileQueue implements ProfileLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** `clock`: what deadlines are read against. Default: the system clock. */
  constructor(private readonly clock: Clock = systemClock) {}

  run<T>(key: string, task: (fence: Fence) => Promise<T>, deadline?: number): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let started = false;
    let gaveUp = false;
    const start = () => {
      // Its waiter gave up at the deadline: the task never runs, and the next one goes at once.
      if (gaveUp) return Promise.reject(turnTooLate(key));
      started = true;
      return task(QUEUE_FENCE);
    };
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
    if (deadline === undefined) return result;
    // Only the wait is bounded: a task that started runs to its end (its own deadlines bound it).
    return new Promise<T>((resolve, reject) => {
      const ended = new AbortController();
      void sleepUntil(this.clock, deadline, ended.signal).then(
        () => {
          if (started) return;
          gaveUp = true;
          reject(turnTooLate(key));
        },
        () => undefined,
      );
      result.then(resolve, reject).finally(() => ended.abort());
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.tails.values());
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
