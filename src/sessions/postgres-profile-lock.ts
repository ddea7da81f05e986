import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import type { Pool, PoolClient, QueryConfig } from "../postgres/connection.js";
import { keyNames } from "../redis/keys.js";
import type { Storage } from "../storage/storage.js";
import { transact } from "../storage/transact.js";
import { LedgerError } from "./errors.js";
import type { Fence } from "./fencing.js";
import { ProfileQueue } from "./profile-queue.js";
import type { ProfileLock } from "./profile-lock.js";

export interface PostgresProfileLockOptions {
  /** The deployment's schema (`POSTGRES_SCHEMA`): part of every lock's key, as advisory locks are per database. */
  schema: string;
  /** Longest wait for a profile's lock before failing with LedgerError `busy`. Default 15 000 ms. */
  acquireTimeoutMs?: number;
  /**
   * After this long the lock's connection is closed, so a task that never ends cannot hold a profile
   * for ever: the lock is then free and the task's ledger write is fenced off. Default 60 000 ms.
   */
  maxHoldMs?: number;
  /** Times the wait for a lock and the longest hold. Default: the system clock. */
  clock?: Clock;
}

/** PostgreSQL's "lock_not_available": `lock_timeout` ran out while waiting. */
const LOCK_NOT_AVAILABLE = "55P03";

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Per-profile ordering across replicas on PostgreSQL. Inside a process, the in-memory `ProfileQueue`
 * keeps arrival order; across processes, each task runs under a session advisory lock per profile:
 *
 * - acquire: `pg_advisory_lock(hashtext(schema), hashtext(profileId))` on a connection of the lock's
 *   own pool, with `lock_timeout` set to what is left of `acquireTimeoutMs` (then LedgerError `busy`).
 *   PostgreSQL grants a lock to its waiters in the order they asked: replicas take turns fairly;
 * - hold: the lock is the connection's; a replica that dies closes it, and PostgreSQL frees the lock
 *   at once. After `maxHoldMs` the gateway closes it too;
 * - fence: each acquisition increments the storage's `fence:<id>` (a conditional write like any
 *   other); the task is handed that number as its fence (fencing.ts), and the ledger's writes are
 *   conditioned on it still being the latest: a holder whose connection was lost (network, server
 *   restart, `maxHoldMs`) while its task went on cannot overwrite what the next holder recorded;
 * - release: `pg_advisory_unlock`, and the connection goes back to the pool (closed when that fails).
 *
 * The lock's pool must be its own: a holder keeps a connection for the whole task, which must never
 * starve the ledger's writes of theirs. PostgreSQL unreachable → LedgerError `unavailable` at once:
 * no Deel call is made without ordering.
 */
export class PostgresProfileLock implements ProfileLock {
  private readonly local = new ProfileQueue();
  private readonly schema: string;
  private readonly acquireTimeoutMs: number;
  private readonly maxHoldMs: number;
  private readonly clock: Clock;

  /** `pool`: the lock's own connections; `storage`: where fences are kept, as the ledger reads them. */
  constructor(
    private readonly pool: Pool,
    private readonly storage: Storage,
    options: PostgresProfileLockOptions,
  ) {
    this.schema = options.schema;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 15_000;
    this.maxHoldMs = options.maxHoldMs ?? 60_000;
    this.clock = options.clock ?? systemClock;
  }

  run<T>(profileId: string, task: (fence: Fence) => Promise<T>, deadline?: number): Promise<T> {
    return this.local.run(profileId, () => this.locked(profileId, task, deadline), deadline);
  }

  async close(): Promise<void> {
    await this.local.close();
  }

  private async locked<T>(profileId: string, task: (fence: Fence) => Promise<T>, given: number | undefined): Promise<T> {
    const deadline = Math.min(this.clock.now() + this.acquireTimeoutMs, given ?? Number.POSITIVE_INFINITY);
    const client = await this.take(profileId, deadline);
    let released = false;
    /** Closes the lock's connection: PostgreSQL frees the lock with it. */
    const drop = () => {
      if (released) return;
      released = true;
      client.release(true);
    };
    const startedAt = this.clock.now();
    let holdTimer: NodeJS.Timeout | undefined;
    const watchHold = (ms: number) => {
      holdTimer = setTimeout(() => {
        // A timer may fire late or early against the injected clock: trust the clock.
        const left = startedAt + this.maxHoldMs - this.clock.now();
        if (left > 0) watchHold(left);
        else drop();
      }, Math.max(0, ms));
      holdTimer.unref();
    };
    try {
      let token: number;
      try {
        token = await this.nextFence(profileId);
      } catch (error) {
        throw new LedgerError("unavailable", `Could not take the ordering fence for profile ${profileId} in PostgreSQL: ${reasonOf(error)}`, { cause: error });
      }
      watchHold(this.maxHoldMs);
      return await task({ kind: "token", profileId, token });
    } finally {
      clearTimeout(holdTimer);
      if (!released) {
        released = true;
        try {
          await client.query("SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", [this.schema, profileId]);
          client.release();
        } catch (error) {
          // The connection is closed instead, which frees the lock as well.
          client.release(error instanceof Error ? error : true);
        }
      }
    }
  }

  /** Waits for the profile's lock on a connection of the lock's pool; resolves to that connection. */
  private async take(profileId: string, deadline: number): Promise<PoolClient> {
    let client: PoolClient;
    const connecting = this.pool.connect();
    const ended = new AbortController();
    const tooLate = new Error("no connection came free before the deadline");
    const late = sleepUntil(this.clock, deadline, ended.signal).then(() => {
      throw tooLate;
    });
    try {
      client = await Promise.race([connecting, late]);
    } catch (error) {
      // A connection that comes after the deadline goes straight back to the pool.
      if (error === tooLate) void connecting.then((late) => late.release(), () => undefined);
      // Every connection held by other profiles' turns until the wait was over: as busy as a held lock.
      if (this.clock.now() >= deadline) {
        throw new LedgerError("busy", `No connection for profile ${profileId}'s lock came free before this operation's deadline`, { cause: error });
      }
      throw new LedgerError("unavailable", `Could not take the ordering lock for profile ${profileId} in PostgreSQL: ${reasonOf(error)}`, { cause: error });
    } finally {
      ended.abort();
    }
    const left = Math.floor(deadline - this.clock.now());
    try {
      if (left <= 0) throw Object.assign(new Error("no time left to wait"), { code: LOCK_NOT_AVAILABLE });
      // Both settings are the connection's own until the next turn sets them again (the pool is the lock's).
      await client.query(`SET lock_timeout = ${left}; SET statement_timeout = ${left + 1000}`);
      // node-postgres takes a per-query read timeout (untyped): the pool's own would end the wait early.
      const wait: QueryConfig & { query_timeout: number } = {
        text: "SELECT pg_advisory_lock(hashtext($1), hashtext($2))",
        values: [this.schema, profileId],
        query_timeout: left + 2000,
      };
      await client.query(wait);
      return client;
    } catch (error) {
      client.release(true);
      if ((error as { code?: unknown }).code === LOCK_NOT_AVAILABLE) {
        throw new LedgerError("busy", `Another operation on profile ${profileId} held its lock past this operation's deadline`);
      }
      throw new LedgerError("unavailable", `Could not take the ordering lock for profile ${profileId} in PostgreSQL: ${reasonOf(error)}`, { cause: error });
    }
  }

  /** Increments the profile's fencing counter, where the ledger's fenced writes read it. */
  private nextFence(profileId: string): Promise<number> {
    const key = keyNames.fence(profileId);
    return transact(this.storage, async () => {
      const [current] = await this.storage.get([key]);
      const next = Number(current ?? 0) + 1;
      return { result: next, conditions: [{ key, equals: current ?? null }], writes: [{ op: "put", key, value: String(next) }] };
    });
  }
}
