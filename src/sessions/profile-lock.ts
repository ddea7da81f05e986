import type { Fence } from "./fencing.js";

/**
 * Orders creates and revokes per profile: a task for a profile starts only after the tasks that
 * arrived before it for that profile have finished. In one process an in-memory queue does it
 * (`ProfileQueue`); across replicas a Redis-backed implementation does. Each task is handed the
 * fence of its turn, to pass to every ledger write it makes for the profile (see fencing.ts).
 *
 * `deadline` (epoch ms, optional) bounds the wait for the turn, every part of it (behind this
 * process's earlier tasks, for another replica's lock, for a connection): a task whose turn has not
 * come by then never runs, and the call rejects with LedgerError `busy`. A task that started runs
 * to its end.
 */
export interface ProfileLock {
  run<T>(profileId: string, task: (fence: Fence) => Promise<T>, deadline?: number): Promise<T>;
  close(): Promise<void>;
}
