import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { CreateWorkerSessionDocument, RevokeWorkerSessionDocument, WorkerSessionDocument } from "../generated/operations.js";
import { aCallerToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { codes, gql } from "../support/gateway.js";
import { startMinimalDeel, type MinimalDeel } from "../support/minimal-deel.js";
import { runGatewayProcess, startGatewayProcess } from "../support/process.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe("the built program (node dist/main.js)", () => {
  it("serves the contract against any server that follows SPEC §2, logs no token, and exits 0 on SIGTERM", async () => {
    const deel: MinimalDeel = await startMinimalDeel();
    cleanups.push(() => deel.close());
    const gateway = await startGatewayProcess({
      HOST: "127.0.0.1",
      PORT: "0",
      DEEL_API_URL: deel.url,
      DEEL_API_TOKEN: deel.token,
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      AUTH_ISSUER: TEST_ISSUER,
      AUTH_AUDIENCE: TEST_AUDIENCE,
      SESSION_STORE_URL: "memory:",
      LOG_LEVEL: "trace",
    });
    cleanups.push(() => gateway.stop("SIGKILL"));
    const caller = await aCallerToken({ sub: "ops-test" });
    const [profile] = deel.profiles as [string];

    const created = await gql(gateway.url, CreateWorkerSessionDocument, { input: { profileId: profile, idempotencyKey: "k1" } }, { token: caller });
    expect(created.errors).toBeUndefined();
    const workerToken = created.data!.createWorkerSession.token;
    expect((await gql(gateway.url, WorkerSessionDocument, { profileId: profile }, { token: caller })).data?.workerSession?.status).toBe("ACTIVE");
    expect((await gql(gateway.url, RevokeWorkerSessionDocument, { input: { profileId: profile } }, { token: caller })).errors).toBeUndefined();
    expect((await gql(gateway.url, WorkerSessionDocument, { profileId: profile }, { token: caller })).data?.workerSession?.status).toBe("REVOKED");
    expect(codes(await gql(gateway.url, WorkerSessionDocument, { profileId: profile }))).toEqual(["UNAUTHENTICATED"]);

    expect(deel.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "POST /deel/api/v2/workers/session",
      `DELETE /deel/api/v2/workers/${profile}/session`,
    ]);
    expect(deel.calls[0]?.idempotencyKey).toMatch(/^.{1,64}$/);

    expect(await gateway.stop("SIGTERM")).toBe(0);
    const output = gateway.output();
    expect(output).toContain('"audit"');
    for (const secret of [workerToken, deel.token, caller]) expect(output).not.toContain(secret);
  });

  it("starts in local mode with no environment: sandbox, dev tokens, Sandbox landing page, default SQLite ledger", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "wsg-local-"));
    const gateway = await startGatewayProcess({ PORT: "0" }, { cwd });
    cleanups.push(() => gateway.stop("SIGKILL"));
    await gateway.waitFor(/Worker caller/);
    const banner = gateway.output();
    expect(banner).toContain(`GraphQL + Apollo Sandbox:  ${gateway.url}`);
    const adminToken = /Admin caller[^\n]*\n\s+Bearer (\S+)/.exec(banner)?.[1];
    const profiles = [...banner.matchAll(/^\s{4}([0-9a-f-]{36})$/gm)].map((m) => m[1] as string);
    expect(adminToken).toBeDefined();
    expect(profiles).toHaveLength(5);

    const created = await gql(gateway.url, CreateWorkerSessionDocument, { input: { profileId: profiles[0] as string } }, { token: adminToken as string });
    expect(created.data?.createWorkerSession.session).toMatchObject({ status: "ACTIVE", createdBy: "local-admin" });
    expect(existsSync(join(cwd, "data", "worker-sessions.db"))).toBe(true);

    const landing = await request(gateway.url, { headers: { accept: "text/html" } });
    expect(landing.statusCode).toBe(200);
    expect(await landing.body.text()).toMatch(/sandbox/i);
    const preflight = await request(gateway.url, {
      method: "OPTIONS",
      headers: { origin: "https://studio.apollographql.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    await preflight.body.dump();
    expect(preflight.headers["access-control-allow-origin"]).toBe("https://studio.apollographql.com");
    expect(await gateway.stop("SIGTERM")).toBe(0);
  });

  it("refuses to start in production without a Deel token, naming the variable", async () => {
    const { code, output } = await runGatewayProcess({ NODE_ENV: "production", AUTH_JWT_SECRET: TEST_JWT_SECRET });
    expect(code).not.toBe(0);
    expect(output).toMatch(/DEEL_API_TOKEN \(or DEEL_API_TOKEN_FILE\) is required/);
    expect(output).not.toContain(TEST_JWT_SECRET);
  });
});
