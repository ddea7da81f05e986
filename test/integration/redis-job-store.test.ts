/**
 * The kill switch's contract (test/support/job-store-contract.ts) on Redis: the createdBy index kept
 * by the ledger's put, and the jobs' store, whose leases run on the real clock. Each replica is its
 * own connection; each test its own key prefix.
 */
import { createStorage } from "../../src/sessions/create-store.js";
import { LedgerJobStore } from "../../src/sessions/jobs/ledger-job-store.js";
import type { Redis } from "../../src/redis/connection.js";
import { creatorIndexContract, jobStoreContract } from "../support/job-store-contract.js";
import { deletePrefix, describeRedis, suiteRedis, uniquePrefix, freshRedisLedger, REDIS_URL } from "../support/redis.js";
import { DAY } from "../support/store-contract.js";

const RETENTION_MS = 7 * DAY;

/** The jobs' store of one replica: its own connection, the shared prefix. */
function jobsOn(connection: Redis, keyPrefix: string): LedgerJobStore {
  return new LedgerJobStore(createStorage({ kind: "redis", url: REDIS_URL }, { redis: { keyPrefix, retentionMs: RETENTION_MS }, connection }), {
    retentionMs: RETENTION_MS,
  });
}

describeRedis("the kill switch's contract on Redis", () => {
  const { opened } = suiteRedis("jobs");

  creatorIndexContract("Redis", () => freshRedisLedger(opened, RETENTION_MS));

  jobStoreContract("Redis", async () => {
    const own = uniquePrefix("rjob");
    return {
      jobs: jobsOn(await opened(), own),
      other: async () => jobsOn(await opened(), own),
      passTime: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      close: async () => {
        await deletePrefix(own);
      },
    };
  });
});
