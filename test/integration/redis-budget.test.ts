/**
 * The organization's Deel budget shared through Redis (test/support/budget-contract.ts): the window
 * is a sorted set under the organization's key prefix, read where it is kept, on Redis's clock.
 */
import { afterAll } from "vitest";
import type { Redis } from "ioredis";
import { RedisBudget } from "../../src/deel/redis-budget.js";
import { createRedisConnection } from "../../src/redis/connection.js";
import { redisKeys } from "../../src/redis/keys.js";
import { budgetContract } from "../support/budget-contract.js";
import { connect, deletePrefix, describeRedis, uniquePrefix } from "../support/redis.js";

describeRedis("the shared Redis budget", () => {
  const prefixes: string[] = [];
  const connections: Redis[] = [];
  afterAll(async () => {
    for (const connection of connections) connection.disconnect();
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  budgetContract({
    organization: () => {
      const prefix = uniquePrefix("budget");
      prefixes.push(prefix);
      return {
        replicas: async (count, rps, options = {}) => {
          const budgets: RedisBudget[] = [];
          for (let i = 0; i < count; i += 1) {
            const connection = await connect();
            connections.push(connection);
            budgets.push(new RedisBudget(connection, { keyPrefix: prefix, rps, marginMs: 100, ...options }));
          }
          return budgets;
        },
        slots: async () => {
          const flat = await connections[connections.length - 1]!.zrange(redisKeys(prefix).budget, "0", "-1", "WITHSCORES");
          return flat.filter((_, i) => i % 2 === 1).map(Number);
        },
      };
    },
    unreachable: (rps, clock) => {
      const unreachable = createRedisConnection("redis://127.0.0.1:1");
      return {
        budget: new RedisBudget(unreachable, { keyPrefix: uniquePrefix("budget"), rps, clock }),
        close: async () => unreachable.disconnect(),
      };
    },
  });
});
