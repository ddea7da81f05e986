/**
 * A mint whose answer is lost: the built gateway is SIGKILLed while Deel is minting (1.5 s
 * latency), so Deel holds a live token that the process never recorded. Another replica on the
 * same ledger must show it as UNKNOWN, and a revoke must end it and bring the ledger back to
 * Deel's state: on a SQLite file two processes share, on Redis, and on PostgreSQL alone.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startDeelSandbox } from "../../src/deel/sandbox/server.js";
import { CreateWorkerSessionDocument, RevokeWorkerSessionDocument, WorkerSessionDocument } from "../generated/operations.js";
import { anAdminToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { gql } from "../support/gateway.js";
import { startGatewayProcess } from "../support/process.js";
import { SHARED_BACKENDS, type SharedBackend } from "../support/shared-backends.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A SQLite file, shared by processes on one host. */
const sqliteFile: SharedBackend = {
  name: "a SQLite file",
  describe,
  namespace: () => {
    const dir = mkdtempSync(join(tmpdir(), "wsg-lost-mint-"));
    return {
      env: { SESSION_STORE_URL: `sqlite:${join(dir, "ledger.db")}` },
      ledger: () => Promise.reject(new Error("not used")),
      cleanup: async () => undefined,
    };
  },
};

for (const backend of [sqliteFile, ...SHARED_BACKENDS]) backend.describe(`a mint cut off by a crash, on ${backend.name}`, () => {
  it("reads UNKNOWN on another replica, and a revoke makes the ledger equal Deel again", async () => {
    const sandbox = await startDeelSandbox({ latencyMs: 1500, rateLimitRps: 0 });
    cleanups.push(() => sandbox.close());
    const namespace = backend.namespace("lostmint");
    cleanups.push(() => namespace.cleanup());
    const env = {
      HOST: "127.0.0.1",
      PORT: "0",
      DEEL_API_URL: sandbox.url,
      DEEL_API_TOKEN: sandbox.orgToken,
      DEEL_TIMEOUT_MS: "3000",
      DEEL_RATE_LIMIT_RPS: "0",
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      AUTH_ISSUER: TEST_ISSUER,
      AUTH_AUDIENCE: TEST_AUDIENCE,
      ...namespace.env,
    };
    const a = await startGatewayProcess(env);
    cleanups.push(() => a.stop("SIGKILL"));
    const b = await startGatewayProcess(env);
    cleanups.push(() => b.stop("SIGTERM"));
    const admin = await anAdminToken("operator");
    const profile = sandbox.profiles[0] as string;

    const cutOff = gql(a.url, CreateWorkerSessionDocument, { input: { profileId: profile } }, { token: admin }).catch((error: unknown) => error);
    while (sandbox.requests.length === 0) await sleep(10);
    await a.stop("SIGKILL");
    expect(await cutOff).toBeInstanceOf(Error);

    // Deel finishes the mint it was asked for: a live token that no answer ever carried.
    while (sandbox.state(profile) === undefined) await sleep(50);
    expect(sandbox.state(profile)?.revoked).toBe(false);

    // Replica B reads it as UNKNOWN once no create can still be waiting on Deel.
    let status: unknown;
    for (let i = 0; i < 100 && status !== "UNKNOWN"; i += 1) {
      const read = await gql(b.url, WorkerSessionDocument, { profileId: profile }, { token: admin });
      expect(read.errors).toBeUndefined();
      status = read.data?.workerSession?.status ?? null;
      // Until then the ledger knows no session for the profile.
      if (status !== "UNKNOWN") expect(status).toBeNull();
      else expect(read.data?.workerSession).toMatchObject({ createdBy: "operator", revokedAt: null });
      if (status !== "UNKNOWN") await sleep(100);
    }
    expect(status).toBe("UNKNOWN");

    const revoked = await gql(b.url, RevokeWorkerSessionDocument, { input: { profileId: profile } }, { token: admin });
    expect(revoked.errors).toBeUndefined();
    expect(revoked.data?.revokeWorkerSession.session).toMatchObject({ status: "REVOKED", createdBy: "operator", revokedBy: "operator" });

    // The ledger equals Deel: the token is revoked there, and REVOKED here.
    expect(sandbox.state(profile)?.revoked).toBe(true);
    const after = await gql(b.url, WorkerSessionDocument, { profileId: profile }, { token: admin });
    expect(after.data?.workerSession?.status).toBe("REVOKED");
  }, 60_000);
});
