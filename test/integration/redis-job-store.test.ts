/**
 * The kill switch's contract (test/support/job-store-contract.ts) on Redis: the createdBy index kept
 * by the ledger's put script, and the jobs' store, whose lease runs on Redis's clock. Each replica is
 * its own connection; each test its own key prefix.
 */
import { RedisJobStore } from "../../src/sessions/jobs/redis-job-store.js";
import { creatorIndexContract, jobStoreContract } from "../support/job-store-contract.js";
import { deletePrefix, describeRedis, suiteRedis, uniquePrefix, freshRedisLedger } from "../support/redis.js";
import { DAY } from "../support/store-contract.js";

const RETENTION_MS = 7 * DAY;

describeRedis("the kill switch's contract on Redis", () => {
  const { opened } = suiteRedis("jobs");

  creatorIndexContract("Redis", () => freshRedisLedger(opened, RETENTION_MS));

  jobStoreContract("Redis", async () => {
    const own = uniquePrefix("rjob");
    return {
      jobs: new RedisJobStore(await opened(), { keyPrefix: own, retentionMs: RETENTION_MS }),
      other: async () => new RedisJobStore(await opened(), { keyPrefix: own, retentionMs: RETENTION_MS }),
      passTime: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      close: async () => {
        await deletePrefix(own);
      },
    };
  });
});
