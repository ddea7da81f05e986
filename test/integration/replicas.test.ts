/**
 * Several replicas behave as one service. Two gateway processes (the BUILT program, `node
 * dist/main.js`, as production runs it) share one backend (Redis; PostgreSQL alone, no Redis) and
 * one Deel sandbox that enforces Deel's 5 requests per rolling second:
 *
 * - a session created through A reads ACTIVE through B; a revoke through B reads REVOKED through A;
 * - a burst of 20 creates split across both sees zero upstream 429s (the budget is shared);
 * - 40 concurrent mixed operations on a few profiles leave the ledger equal to Deel's state;
 * - Redis outage (a throwaway redis-server of the test's own): `/readyz` 503 and operations failing
 *   fast with UPSTREAM_UNAVAILABLE while it is down, and recovery without a restart when it returns.
 */
import { randomUUID } from "node:crypto";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";
import { CreateWorkerSessionDocument, RevokeWorkerSessionDocument, WorkerSessionDocument } from "../generated/operations.js";
import { anAdminToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { codes, gql } from "../support/gateway.js";
import { startGatewayProcess } from "../support/process.js";
import { REDIS_REQUIRED, ThrowawayRedis, describeRedis, redisServerInstalled, uniquePrefix } from "../support/redis.js";
import { SHARED_BACKENDS } from "../support/shared-backends.js";
import { maxInAnyWindow } from "../support/windows.js";

/** One gateway process, started from the build, with a name for messages. */
interface Replica {
  name: string;
  url: string;
  output(): string;
  readyz(): Promise<number>;
  stop(): Promise<unknown>;
}

async function startReplica(name: string, env: Record<string, string>): Promise<Replica> {
  const gateway = await startGatewayProcess(env);
  const origin = new URL(gateway.url).origin;
  return {
    name,
    url: gateway.url,
    output: () => gateway.output(),
    readyz: async () => {
      const response = await request(`${origin}/readyz`, { headersTimeout: 5000, bodyTimeout: 5000 });
      await response.body.dump();
      return response.statusCode;
    },
    stop: () => gateway.stop("SIGTERM"),
  };
}

/** `store`: where the ledger and everything shared lives (`SESSION_STORE_URL` and its prefix or schema). */
function gatewayEnv(sandbox: DeelSandbox, store: Record<string, string>): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    PORT: "0",
    ...store,
    DEEL_API_URL: sandbox.url,
    DEEL_API_TOKEN: sandbox.orgToken,
    DEEL_RATE_LIMIT_RPS: "5",
    // Deel counts arrivals, the budget paces departures: the margin absorbs the difference. On a busy
    // two-core CI machine (this test's own gateways, sandbox and other test files at once), the
    // default 100 ms has been seen eaten up; an operator raises it the same way on busy hosts.
    DEEL_RATE_LIMIT_MARGIN_MS: "250",
    // Room for 40 operations queued behind Deel's 5 rps; the test asserts that every one succeeds.
    DEEL_TIMEOUT_MS: "20000",
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    CALLER_MUTATIONS_PER_MINUTE: "0",
    LOG_LEVEL: "info",
    SHUTDOWN_GRACE_MS: "2000",
  };
}

const create = (gw: Replica, profileId: string, token: string) =>
  gql(gw.url, CreateWorkerSessionDocument, { input: { profileId, idempotencyKey: null } }, { token });
const revoke = (gw: Replica, profileId: string, token: string) => gql(gw.url, RevokeWorkerSessionDocument, { input: { profileId } }, { token });
const read = (gw: Replica, profileId: string, token: string) => gql(gw.url, WorkerSessionDocument, { profileId }, { token });

for (const backend of SHARED_BACKENDS) backend.describe(`two gateway processes on one ${backend.name} and one Deel sandbox`, () => {
  const namespace = backend.namespace("replicas");
  const profiles = Array.from({ length: 30 }, () => randomUUID());
  let sandbox: DeelSandbox;
  let a: Replica;
  let b: Replica;
  let admin: string;

  beforeAll(async () => {
    sandbox = await startDeelSandbox({ rateLimitRps: 5, profiles });
    admin = await anAdminToken("replica-admin");
    [a, b] = await Promise.all([
      startReplica("A", gatewayEnv(sandbox, namespace.env)),
      startReplica("B", gatewayEnv(sandbox, namespace.env)),
    ]);
  }, 40_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sandbox?.close();
    await namespace.cleanup();
  });

  it("are both ready", async () => {
    expect(await a.readyz()).toBe(200);
    expect(await b.readyz()).toBe(200);
  });

  it("share the ledger: created through A reads ACTIVE through B; revoked through B reads REVOKED through A", async () => {
    const profileId = profiles[0]!;
    const created = await create(a, profileId, admin);
    expect(created.errors).toBeUndefined();
    expect(created.data?.createWorkerSession.token).toBe(sandbox.state(profileId)?.token);

    const throughB = await read(b, profileId, admin);
    expect(throughB.data?.workerSession).toMatchObject({ profileId, status: "ACTIVE", createdBy: "replica-admin" });
    expect(throughB.data?.workerSession?.createdAt).toBe(created.data?.createWorkerSession.session.createdAt);

    const revoked = await revoke(b, profileId, admin);
    expect(revoked.errors).toBeUndefined();
    expect(sandbox.state(profileId)?.revoked).toBe(true);

    const throughA = await read(a, profileId, admin);
    expect(throughA.data?.workerSession).toMatchObject({ profileId, status: "REVOKED", revokedBy: "replica-admin" });
    expect(throughA.data?.workerSession?.revokedAt).toBe(revoked.data?.revokeWorkerSession.revokedAt);
  });

  it("share one Deel budget: a burst of 20 creates split across both sees zero upstream 429s", async () => {
    const before = sandbox.requests.length;
    const burst = profiles.slice(1, 21);
    const results = await Promise.all(burst.map((profileId, i) => create(i % 2 === 0 ? a : b, profileId, admin)));
    const seen = sandbox.requests.slice(before);

    expect(results.map((r) => r.errors)).toEqual(burst.map(() => undefined));
    expect(seen.filter((r) => r.status === 429)).toEqual([]);
    expect(seen).toHaveLength(20);
    const worst = maxInAnyWindow(
      seen.map((r) => r.at),
      1000,
    );
    expect(worst).toBeLessThanOrEqual(5);
    for (const profileId of burst) expect(sandbox.state(profileId)?.revoked).toBe(false);
  });

  it("stay in Deel's state after 40 concurrent mixed operations on a few profiles through both", async () => {
    const hot = profiles.slice(21, 24);
    const before = sandbox.requests.length;
    // 13 creates, 13 revokes and 14 reads, interleaved over 3 profiles and both processes.
    const kinds = ["create", "revoke", "read"] as const;
    const operations = Array.from({ length: 40 }, (_, i) => ({
      kind: kinds[i % 3]!,
      profileId: hot[Math.floor(i / 3) % 3]!,
      gw: (i * 7) % 2 === 0 ? a : b,
    }));
    const results = await Promise.all(
      operations.map(({ kind, profileId, gw }) =>
        kind === "create" ? create(gw, profileId, admin) : kind === "revoke" ? revoke(gw, profileId, admin) : read(gw, profileId, admin),
      ),
    );
    for (const [i, result] of results.entries()) {
      expect(result.errors, `${operations[i]!.kind} #${i}: ${result.raw}`).toBeUndefined();
    }
    const seen = sandbox.requests.slice(before);
    expect(seen.filter((r) => r.status === 429)).toEqual([]);

    for (const profileId of hot) {
      const deel = sandbox.state(profileId);
      for (const gw of [a, b]) {
        const ledger = (await read(gw, profileId, admin)).data?.workerSession ?? null;
        if (deel === undefined) {
          expect(ledger).toBeNull();
          continue;
        }
        expect(ledger, `ledger of ${profileId} through ${gw.name}`).not.toBeNull();
        expect(new Date(ledger!.expiresAt).getTime()).toBe(deel.expiresAt.getTime());
        expect(ledger!.status).toBe(deel.revoked ? "REVOKED" : "ACTIVE");
      }
    }
  }, 40_000);
});

describeRedis("a replica through a Redis outage", () => {
  const prefix = uniquePrefix("outage");
  let redis: ThrowawayRedis | undefined;
  let sandbox: DeelSandbox;
  let gw: Replica;
  let admin: string;
  const canRun = redisServerInstalled;
  if (!canRun) {
    if (REDIS_REQUIRED) throw new Error("REQUIRE_REDIS=1, but redis-server is not installed: the outage test starts its own (see .ci/run)");
    process.stderr.write('[redis] SKIPPED "a replica through a Redis outage": redis-server is not installed, and the test starts its own to stop.\n');
  }

  beforeAll(async () => {
    if (!canRun) return;
    redis = await ThrowawayRedis.start();
    sandbox = await startDeelSandbox({ rateLimitRps: 5 });
    admin = await anAdminToken("outage-admin");
    gw = await startReplica("C", gatewayEnv(sandbox, { SESSION_STORE_URL: redis.url, REDIS_KEY_PREFIX: prefix }));
  }, 30_000);

  afterAll(async () => {
    await gw?.stop();
    await sandbox?.close();
    await redis?.kill();
  });

  it.skipIf(!canRun)("answers 503 on /readyz and fails operations fast while Redis is down, and heals by itself when it returns", async () => {
    const profileId = sandbox.profiles[0]!;
    expect(await gw.readyz()).toBe(200);
    expect((await create(gw, profileId, admin)).errors).toBeUndefined();

    // Down.
    const requestsBefore = sandbox.requests.length;
    await redis!.kill();
    const killedAt = Date.now();
    let status = await gw.readyz();
    while (status !== 503 && Date.now() - killedAt < 5000) {
      await new Promise((r) => setTimeout(r, 20));
      status = await gw.readyz();
    }
    expect(status).toBe(503);

    const mutationStarted = Date.now();
    const refused = await create(gw, profileId, admin);
    const mutationMs = Date.now() - mutationStarted;
    expect(codes(refused)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(refused.errors?.[0]?.message).toMatch(/session ledger is unavailable/);
    const queryStarted = Date.now();
    const unread = await read(gw, profileId, admin);
    const queryMs = Date.now() - queryStarted;
    expect(codes(unread)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(mutationMs).toBeLessThan(1000);
    expect(queryMs).toBeLessThan(1000);
    // No Deel call was made while ordering and the budget could not be consulted.
    expect(sandbox.requests.length).toBe(requestsBefore);

    // Back (empty: this Redis keeps nothing on disk), on the same port, with no gateway restart.
    await redis!.start();
    const restartedAt = Date.now();
    status = await gw.readyz();
    while (status !== 200 && Date.now() - restartedAt < 10_000) {
      await new Promise((r) => setTimeout(r, 50));
      status = await gw.readyz();
    }
    expect(status).toBe(200);

    const again = await create(gw, profileId, admin);
    expect(again.errors).toBeUndefined();
    expect((await read(gw, profileId, admin)).data?.workerSession?.status).toBe("ACTIVE");
    expect(gw.output()).toMatch(/Redis is unreachable/);
    expect(gw.output()).toMatch(/Redis is reachable again/);
  }, 30_000);
});
