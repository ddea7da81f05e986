/**
 * The organization's Deel budget shared through PostgreSQL (test/support/budget-contract.ts): the
 * plan and the departures are the budget's row in the organization's schema, on PostgreSQL's clock;
 * each replica has its own pool. Also: a schema migrated before the departures existed (version 2)
 * gains them, and the row keeps its plan.
 */
import { expect, it } from "vitest";
import { closePostgresPool, createPostgresPool } from "../../src/postgres/connection.js";
import { MIGRATIONS, migrate } from "../../src/postgres/migrations.js";
import { PostgresBudget } from "../../src/deel/postgres-budget.js";
import { budgetContract } from "../support/budget-contract.js";
import { DATABASE_URL, describePostgres, dropSchema, postgresSettings, suitePostgres, uniqueSchema } from "../support/postgres.js";
import { maxInAnyWindow } from "../support/windows.js";

describePostgres("the shared PostgreSQL budget", () => {
  const { opened, fresh } = suitePostgres("budget");

  budgetContract({
    organization: () => {
      const schema = fresh();
      return {
        replicas: async (count, rps, { marginMs, clocks }) => {
          const budgets: PostgresBudget[] = [];
          for (let i = 0; i < count; i += 1) budgets.push(new PostgresBudget(await opened(schema), { rps, marginMs, clock: clocks?.[i] }));
          return budgets;
        },
      };
    },
    unreachable: (rps, clock) => {
      const pool = createPostgresPool("postgres://postgres@127.0.0.1:1/test", postgresSettings(uniqueSchema("budget")));
      return { budget: new PostgresBudget(pool, { rps, clock }), close: () => closePostgresPool(pool) };
    },
  });

  it("records every departure on PostgreSQL's clock, at most rps in any window of the budget's length", async () => {
    const schema = fresh();
    const [a, b] = [new PostgresBudget(await opened(schema), { rps: 2, marginMs: 100 }), new PostgresBudget(await opened(schema), { rps: 2, marginMs: 100 })];
    await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).acquire(Date.now() + 20_000)));
    // The row keeps the departures of the last window (1.1 s) at least: the last two here.
    const departed = await a.departureTimes();
    expect(departed.length).toBeGreaterThanOrEqual(2);
    expect(maxInAnyWindow(departed, 1100)).toBeLessThanOrEqual(2);
  });

  it("gives up waiting on a row another transaction holds once the caller's signal aborts, and paces on once the row is free", async () => {
    const schema = fresh();
    const holderPool = await opened(schema);
    const budget = new PostgresBudget(await opened(schema), { rps: 5 });
    // Another replica stuck inside its step: the row stays locked until it is let go below.
    const holder = await holderPool.connect();
    await holder.query("BEGIN; SELECT 1 FROM deel_budget WHERE id = 'organization' FOR UPDATE");
    let released = false;
    try {
      const controller = new AbortController();
      const call = budget.acquire(Date.now() + 60_000, controller.signal).then(
        () => ({ left: true, released }),
        (error: unknown) => ({ left: false, released, error }),
      );
      setTimeout(() => controller.abort(), 200);
      // Let the holder go only after 20 s. A budget that ignores the signal settles only when the
      // statement timeout (5 s here) cancels its wait, with the database's error, not the caller's.
      const letGo = setTimeout(() => {
        released = true;
        void holder.query("COMMIT");
      }, 20_000);
      const settled = await call;
      clearTimeout(letGo);
      expect(settled).toMatchObject({ left: false, released: false, error: { kind: "unavailable", message: expect.stringContaining("aborted by the caller") } });
    } finally {
      if (!released) await holder.query("COMMIT");
      holder.release();
    }
    // Once the row is free the abandoned step ends, its connection back in the pool: the budget paces on.
    await budget.acquire(Date.now() + 5000);
    expect((await budget.departureTimes()).length).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it("upgrades a schema from version 2: the row gains empty departures and keeps its plan", async () => {
    const schema = uniqueSchema("budget_v2");
    const pool = createPostgresPool(DATABASE_URL, postgresSettings(schema), { name: "wsg-test" });
    try {
      expect(await migrate(pool, schema, MIGRATIONS.filter((m) => m.version <= 2))).toEqual({ from: 0, to: 2 });
      await pool.query(`UPDATE deel_budget SET slots = '[[1, "old-call"]]' WHERE id = 'organization'`);
      const { to } = await migrate(pool, schema);
      expect(to).toBeGreaterThanOrEqual(3);
      const { rows } = await pool.query<{ slots: unknown; departures: unknown }>("SELECT slots, departures FROM deel_budget WHERE id = 'organization'");
      expect(rows).toEqual([{ slots: [[1, "old-call"]], departures: [] }]);
      // And it paces on it at once: the stale slot is forgotten, the call leaves.
      await new PostgresBudget(pool, { rps: 1 }).acquire(Date.now() + 1000);
      expect(await new PostgresBudget(pool, { rps: 1 }).departureTimes()).toHaveLength(1);
    } finally {
      await closePostgresPool(pool);
      await dropSchema(schema);
    }
  });
});
