/**
 * The organization's Deel budget shared through PostgreSQL (test/support/budget-contract.ts): the
 * window is the budget's row in the organization's schema, read where it is kept, on PostgreSQL's
 * clock; each replica has its own pool.
 */
import { closePostgresPool, createPostgresPool } from "../../src/postgres/connection.js";
import { PostgresBudget } from "../../src/deel/postgres-budget.js";
import { budgetContract } from "../support/budget-contract.js";
import { describePostgres, postgresSettings, suitePostgres, uniqueSchema } from "../support/postgres.js";

describePostgres("the shared PostgreSQL budget", () => {
  const { opened, fresh } = suitePostgres("budget");

  budgetContract({
    organization: () => {
      const schema = fresh();
      let last: PostgresBudget | undefined;
      return {
        replicas: async (count, rps, options = {}) => {
          const budgets: PostgresBudget[] = [];
          for (let i = 0; i < count; i += 1) budgets.push(new PostgresBudget(await opened(schema), { rps, marginMs: 100, ...options }));
          last = budgets[budgets.length - 1];
          return budgets;
        },
        slots: async () => (last === undefined ? [] : last.reservedSlots()),
      };
    },
    unreachable: (rps, clock) => {
      const pool = createPostgresPool("postgres://postgres@127.0.0.1:1/test", postgresSettings(uniqueSchema("budget")));
      return { budget: new PostgresBudget(pool, { rps, clock }), close: () => closePostgresPool(pool) };
    },
  });
});
