/**
 * The Deel budget's contract (test/support/budget-contract.ts) on the in-process budget and on the
 * Redis budget; the PostgreSQL budget runs it in postgres-budget.test.ts.
 */
import { afterAll, describe } from "vitest";
import type { Redis } from "ioredis";
import { LocalBudget } from "../../src/deel/local-budget.js";
import { RedisBudget } from "../../src/deel/redis-budget.js";
import { createRedisConnection } from "../../src/redis/connection.js";
import { budgetContract } from "../support/budget-contract.js";
import { connect, deletePrefix, describeRedis, uniquePrefix } from "../support/redis.js";

describe("the in-process budget (one process: every handle is the same budget)", () => {
  budgetContract({
    organization: () => ({
      replicas: async (count, rps, { marginMs, clocks }) => {
        const budget = new LocalBudget({ rps, marginMs, clock: clocks?.[0] });
        return Array.from({ length: count }, () => budget);
      },
    }),
  });
});

describeRedis("the shared Redis budget", () => {
  const prefixes: string[] = [];
  const connections: Redis[] = [];
  afterAll(async () => {
    for (const connection of connections) connection.disconnect();
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  budgetContract({
    organization: () => {
      const keyPrefix = uniquePrefix("budget");
      prefixes.push(keyPrefix);
      return {
        replicas: async (count, rps, { marginMs, clocks }) => {
          const budgets: RedisBudget[] = [];
          for (let i = 0; i < count; i += 1) {
            const connection = await connect();
            connections.push(connection);
            budgets.push(new RedisBudget(connection, { keyPrefix, rps, marginMs, clock: clocks?.[i] }));
          }
          return budgets;
        },
      };
    },
    unreachable: (rps, clock) => {
      const unreachable = createRedisConnection("redis://127.0.0.1:1");
      const keyPrefix = uniquePrefix("budget");
      return {
        budget: new RedisBudget(unreachable, { keyPrefix, rps, clock }),
        close: async () => void unreachable.disconnect(),
      };
    },
  });
});
