/**
 * Upgrade safety on Redis: keys written by the previous release (its Lua scripts' layout, written
 * here by hand with plain commands) read the same through this release's ledger and jobs' store,
 * which carry on writing them in place.
 */
import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import { createStorage } from "../../src/sessions/create-store.js";
import { LedgerJobStore } from "../../src/sessions/jobs/ledger-job-store.js";
import { describeRedis, REDIS_URL, redisLedger, suiteRedis } from "../support/redis.js";
import { SEED } from "../support/store-contract.js";

const DAY = 24 * 3600 * 1000;

describeRedis("Redis keys written by the previous release", () => {
  const { prefix, opened } = suiteRedis("upgrade");

  it("read the same: records, intents, the createdBy index", async () => {
    const redis = await opened();
    const [p1, p2] = [randomUUID(), randomUUID()];
    const sub = `caller-${randomUUID().slice(0, 8)}`;
    const now = Date.now();
    const stored = {
      profileId: p1,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + DAY).toISOString(),
      revokedAt: null,
      createdBy: sub,
      revokedBy: null,
    };
    await redis.set(`${prefix}session:${p1}`, JSON.stringify(stored), "PXAT", now + 8 * DAY);
    await redis.sadd(`${prefix}creator:${sub}`, p1);
    await redis.set(`${prefix}intent:${p2}`, JSON.stringify({ profileId: p2, createdBy: sub, startedAt: now - 10 }), "PX", DAY);

    const ledger = redisLedger(redis, prefix, 7 * DAY);
    const record = { ...stored, createdAt: new Date(now), expiresAt: new Date(now + DAY), revokedAt: null };
    expect(await ledger.getStates([p1, p2])).toEqual([
      { record, intent: null },
      { record: null, intent: { profileId: p2, createdBy: sub, startedAt: new Date(now - 10) } },
    ]);
    expect(await ledger.listByCreator(sub)).toEqual([record]);
    // Written on in place: the same JSON string, its expiry kept.
    const revokedAt = new Date(now + 5);
    expect(await ledger.markRevoked(p1, revokedAt, "operator", SEED)).toEqual({ ...record, revokedAt, revokedBy: "operator" });
    expect(JSON.parse((await redis.get(`${prefix}session:${p1}`))!)).toEqual({ ...stored, revokedAt: revokedAt.toISOString(), revokedBy: "operator" });
    expect(Math.abs((await redis.pexpiretime(`${prefix}session:${p1}`)) - (now + 8 * DAY))).toBeLessThan(1000);
  });

  it("read the same: a running revocation job, its targets and its block, which a runner carries on", async () => {
    const redis = await opened();
    const id = randomUUID();
    const [named, targeted] = [randomUUID(), randomUUID()];
    await redis.hset(`${prefix}rjob:${id}`, {
      id,
      status: "RUNNING",
      createdBy: "svc-leaked",
      profileIds: JSON.stringify([named]),
      onlyActive: "1",
      requestedBy: "operator",
      startedAt: "1780000000000",
      finishedAt: "",
      planned: "1",
      total: "1",
      revoked: "0",
      failed: "0",
      failureReason: "",
      owner: "runner-old",
      leaseUntil: "0",
    });
    await redis.hset(`${prefix}rjob-targets:${id}`, targeted, JSON.stringify({ state: "in_progress", attempts: 1, notBefore: 0, lastError: null }));
    await redis.sadd(`${prefix}rjob-blocked:${id}`, named, targeted);
    await redis.sadd(`${prefix}rjobs:running`, id);

    const storage = createStorage({ kind: "redis", url: REDIS_URL }, { redis: { keyPrefix: prefix, retentionMs: 7 * DAY }, connection: redis });
    const jobs = new LedgerJobStore(storage, { retentionMs: 7 * DAY });
    expect(await jobs.get(id)).toEqual({
      id,
      status: "RUNNING",
      filters: { createdBy: "svc-leaked", profileIds: [named], onlyActive: true },
      requestedBy: "operator",
      startedAt: new Date(1_780_000_000_000),
      finishedAt: null,
      planned: true,
      total: 1,
      revoked: 0,
      failed: 0,
      failureReason: null,
    });
    expect(await jobs.running()).toContain(id);
    expect(await jobs.targets(id)).toEqual([{ profileId: targeted, state: "in_progress", attempts: 1, notBefore: 0, lastError: null }]);
    expect(await jobs.blockingJob(named, "anyone")).toEqual({ id, reason: "profile" });
    expect(await jobs.blockingJob(randomUUID(), "svc-leaked")).toEqual({ id, reason: "creator" });
    // The old runner's lease has lapsed (leaseUntil 0): a new runner takes over and finishes.
    expect(await jobs.claim(id, "runner-new", 60_000)).toBe(true);
    expect(await jobs.updateTarget(id, "runner-new", { profileId: targeted, state: "revoked", attempts: 2, notBefore: 0, lastError: null })).toBe(true);
    expect(await jobs.finish(id, "runner-new", "DONE", new Date(1_780_000_100_000), null)).toBe(true);
    expect(await jobs.get(id)).toMatchObject({ status: "DONE", total: 1, revoked: 1, finishedAt: new Date(1_780_000_100_000) });
    expect(await redis.type(`${prefix}rjob:${id}`)).toBe("hash");
    expect(await redis.sismember(`${prefix}rjobs:running`, id)).toBe(0);
    expect(await redis.pttl(`${prefix}rjob:${id}`)).toBeGreaterThan(6 * DAY);
  });
});
