/**
 * Orders creates and revokes per profile: a task for a profile starts only after the tasks that
 * arrived before it for that profile have finished. In one process an in-memory queue does it
 * (`ProfileQueue`); across replicas a Redis-backed implementation does.
 */
export interface ProfileLock {
  run<T>(profileId: string, task: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
