import type { Condition, Storage, Write } from "./storage.js";

/** What one attempt decided from what it read: the result, and the conditional write that makes it so. */
export interface Decision<T> {
  readonly result: T;
  /** Nothing to write: the result stands on what was read. */
  readonly conditions?: readonly Condition[];
  readonly writes?: readonly Write[];
}

/** A conditional write kept losing its race; `attempts` reads and decisions all lost. */
export class ContentionError extends Error {
  constructor(readonly attempts: number) {
    super(`a conditional write lost ${attempts} races in a row`);
    this.name = "ContentionError";
  }
}

/**
 * Attempts per decision. Each lost race means another writer won one, so N writers racing on one key
 * all get through within N attempts; losing this often in a row is a fault, not contention.
 */
export const MAX_ATTEMPTS = 64;

/**
 * Reads, decides, and commits on what was read, again from the start when another writer changed a
 * key in between: `decide` must read everything its decision rests on and name it in `conditions`.
 * Bounded: after `MAX_ATTEMPTS` lost races, rejects with a ContentionError.
 */
export async function transact<T>(storage: Storage, decide: () => Promise<Decision<T>>): Promise<T> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    const decision = await decide();
    const writes = decision.writes ?? [];
    if (writes.length === 0) return decision.result;
    if (await storage.commit(decision.conditions ?? [], writes)) return decision.result;
  }
  throw new ContentionError(MAX_ATTEMPTS);
}
