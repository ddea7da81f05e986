/**
 * The ordered keys' contract (test/support/ordered-contract.ts) on Redis (a unique key prefix) and on
 * PostgreSQL (a migrated schema of its own), where a page read of many keys is counted: one
 * statement; and the session history's contract over the ledger (test/support/history-contract.ts)
 * on both. SQLite runs them in the unit tier.
 */
import { createStorage } from "../../src/sessions/create-store.js";
import { countStatements, DATABASE_URL, describePostgres, postgresSettings, suitePostgres } from "../support/postgres.js";
import { historyContract } from "../support/history-contract.js";
import { orderedKeysContract } from "../support/ordered-contract.js";
import { connect, deletePrefix, describeRedis, uniquePrefix } from "../support/redis.js";

describeRedis("ordered keys on Redis", () => {
  orderedKeysContract("Redis", async () => {
    const prefix = uniquePrefix("ordered");
    const connection = await connect();
    const storage = createStorage({ kind: "redis", url: "redis://unused" }, { redis: { keyPrefix: prefix, retentionMs: 1000 }, connection });
    return {
      storage,
      close: async () => {
        await deletePrefix(prefix);
        connection.disconnect();
      },
    };
  });
  historyContract("Redis", async () => {
    const prefix = uniquePrefix("history");
    const connection = await connect();
    const storage = createStorage({ kind: "redis", url: "redis://unused" }, { redis: { keyPrefix: prefix, retentionMs: 1000 }, connection });
    return {
      storage,
      close: async () => {
        await deletePrefix(prefix);
        connection.disconnect();
      },
    };
  });
});

describePostgres("ordered keys on PostgreSQL", () => {
  const { opened } = suitePostgres("ordered");
  orderedKeysContract("PostgreSQL", async () => {
    const pool = await opened();
    const statements = countStatements(pool);
    const storage = createStorage({ kind: "postgres", url: DATABASE_URL }, { pool, postgres: postgresSettings("unused") });
    return { storage, roundTrips: () => statements().length, close: async () => undefined };
  });
  historyContract("PostgreSQL", async (clock) => ({
    storage: createStorage({ kind: "postgres", url: DATABASE_URL }, { pool: await opened(), postgres: postgresSettings("unused"), clock }),
    close: async () => undefined,
  }));
});
