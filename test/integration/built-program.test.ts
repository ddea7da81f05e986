import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { request } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import {
  CreateWorkerMagicLinkDocument,
  CreateWorkerSessionDocument,
  RevocationJobDocument,
  RevokeWorkerSessionDocument,
  RevokeWorkerSessionsDocument,
  WorkerSessionDocument,
} from "../generated/operations.js";
import { aCallerToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";
import { createStore } from "../../src/sessions/create-store.js";
import { codes, gql } from "../support/gateway.js";
import { startMinimalDeel, type MinimalDeel } from "../support/minimal-deel.js";
import { runGatewayProcess, startGatewayProcess } from "../support/process.js";

const cleanups: Array<() => Promise<unknown>> = [];
const execFileAsync = promisify(execFile);

/** The built program pointed at `sandbox` as an operator would, with a SQLite ledger in `dir`. */
function operatorEnv(sandbox: DeelSandbox, dir: string): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    PORT: "0",
    DEEL_API_URL: sandbox.url,
    DEEL_API_TOKEN: sandbox.orgToken,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    SESSION_STORE_URL: `sqlite:${join(dir, "ledger.db")}`,
  };
}
/** The built program pointed at the independent minimal server, with an in-memory ledger. */
function minimalDeelEnv(deel: MinimalDeel, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    PORT: "0",
    DEEL_API_URL: deel.url,
    DEEL_API_TOKEN: deel.token,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    SESSION_STORE_URL: "memory:",
    ...extra,
  };
}
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe("the built program (node dist/main.js)", () => {
  it("against the independent minimal server too: a lost answer reads UNKNOWN, and the kill switch revokes what a caller minted", async () => {
    const deel: MinimalDeel = await startMinimalDeel(4);
    cleanups.push(() => deel.close());
    const gateway = await startGatewayProcess(minimalDeelEnv(deel, { DEEL_TIMEOUT_MS: "1000", DEEL_MAX_ATTEMPTS: "1", REVOCATION_POLL_MS: "500" }));
    cleanups.push(() => gateway.stop("SIGKILL"));
    const leaked = await aCallerToken({ sub: "svc-leaked" });
    const operator = await aCallerToken({ sub: "operator" });
    const [p0, p1, p2, lost] = deel.profiles as [string, string, string, string];
    for (const profile of [p0, p1, p2]) {
      expect((await gql(gateway.url, CreateWorkerSessionDocument, { input: { profileId: profile } }, { token: leaked })).errors).toBeUndefined();
    }

    // The server mints but its answer never comes: the create fails, the token is live there.
    deel.loseNextAnswer();
    expect(codes(await gql(gateway.url, CreateWorkerSessionDocument, { input: { profileId: lost } }, { token: leaked }))).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(deel.isLive(lost)).toBe(true);
    let status: unknown = null;
    for (let i = 0; i < 60 && status !== "UNKNOWN"; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await gql(gateway.url, WorkerSessionDocument, { profileId: lost }, { token: operator })).data?.workerSession?.status ?? null;
    }
    expect(status).toBe("UNKNOWN");

    // The kill switch: every session the caller minted is revoked at the minimal server.
    const started = await gql(gateway.url, RevokeWorkerSessionsDocument, { input: { createdBy: "svc-leaked" } }, { token: operator });
    expect(started.errors).toBeUndefined();
    const id = started.data!.revokeWorkerSessions.id;
    let job = started.data!.revokeWorkerSessions;
    for (let i = 0; i < 100 && job.status === "RUNNING"; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      job = (await gql(gateway.url, RevocationJobDocument, { id }, { token: operator })).data!.revocationJob!;
    }
    expect(job).toMatchObject({ status: "DONE", failed: 0, requestedBy: "operator" });
    expect(job.revoked).toBeGreaterThanOrEqual(3);
    for (const profile of [p0, p1, p2]) expect(deel.isLive(profile)).toBe(false);

    // A revoke resolves the lost mint: REVOKED here, no live token there.
    expect((await gql(gateway.url, RevokeWorkerSessionDocument, { input: { profileId: lost } }, { token: operator })).errors).toBeUndefined();
    expect(deel.isLive(lost)).toBe(false);
    expect((await gql(gateway.url, WorkerSessionDocument, { profileId: lost }, { token: operator })).data?.workerSession?.status).toBe("REVOKED");
  });

  it("serves the contract against any server that follows Deel's published worker-session API, logs no token, and exits 0 on SIGTERM", async () => {
    const deel: MinimalDeel = await startMinimalDeel();
    cleanups.push(() => deel.close());
    const gateway = await startGatewayProcess(minimalDeelEnv(deel, { LOG_LEVEL: "trace" }));
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

  it("serves createWorkerMagicLink against that independent server: the link comes back, the worker token stays inside", async () => {
    const deel: MinimalDeel = await startMinimalDeel();
    cleanups.push(() => deel.close());
    const gateway = await startGatewayProcess(minimalDeelEnv(deel, { MAGIC_LINK_REDIRECT_ORIGINS: "https://app.example.com", LOG_LEVEL: "trace" }));
    cleanups.push(() => gateway.stop("SIGKILL"));
    const caller = await aCallerToken({ sub: "ops-magic-link" });
    const [, profile] = deel.profiles as [string, string];

    const input = { profileId: profile, redirectPath: "/onboarding", onSuccessRedirectUrl: "https://app.example.com/done", idempotencyKey: "ml-1" };
    const linked = await gql(gateway.url, CreateWorkerMagicLinkDocument, { input }, { token: caller });
    expect(linked.errors).toBeUndefined();
    const { magicLink, session } = linked.data!.createWorkerMagicLink;
    expect(magicLink).toMatch(/^https:\/\/minimal\.deel\.test\/ml\/[0-9a-f]+$/);
    expect(session).toMatchObject({ profileId: profile, status: "ACTIVE", createdBy: "ops-magic-link" });
    expect(deel.calls.map((c) => `${c.method} ${c.path}`)).toEqual(["POST /deel/api/v2/workers/session", "POST /deel/api/v2/magic-link"]);
    const [asked] = deel.magicLinks;
    expect(asked?.redirectPath).toBe("/onboarding");

    expect(await gateway.stop("SIGTERM")).toBe(0);
    const output = gateway.output();
    expect(output).toContain('"action":"magic_link"');
    expect(linked.raw).not.toContain(asked?.workerToken as string);
    for (const secret of [asked?.workerToken as string, magicLink, deel.token, caller]) expect(output).not.toContain(secret);
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
    const page = await landing.body.text();
    expect(page).toMatch(/sandbox/i);
    // Sandbox opens ready to run: the example operation, the first worker, the admin header, no telemetry.
    expect(page).toContain(`"headers":{"Authorization":"Bearer ${adminToken as string}"}`);
    expect(page).toContain(`"variables":{"profileId":"${profiles[0] as string}"}`);
    expect(page).toContain("createWorkerSession(input: { profileId: $profileId })");
    expect(page).toContain('"runTelemetry":false');
    // The banner is honest about the CDN, and its curl line works without a browser.
    expect(banner).toMatch(/loads Apollo's embeddable Sandbox from Apollo's CDN/);
    expect(banner).not.toMatch(/nothing leaves this machine/);
    const curl = /^\s+(curl -s .+)$/m.exec(banner)?.[1];
    expect(curl).toBeDefined();
    const { stdout } = await execFileAsync("bash", ["-c", curl as string]);
    expect(JSON.parse(stdout)).toMatchObject({ data: { createWorkerSession: { session: { status: "ACTIVE" } } } });
    const preflight = await request(gateway.url, {
      method: "OPTIONS",
      headers: { origin: "https://studio.apollographql.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    await preflight.body.dump();
    expect(preflight.headers["access-control-allow-origin"]).toBe("https://studio.apollographql.com");
    expect(await gateway.stop("SIGTERM")).toBe(0);
  });

  it("drains on SIGTERM: a create in flight completes, is recorded, and the process exits 0", async () => {
    const sandbox = await startDeelSandbox({ latencyMs: 1500, rateLimitRps: 0 });
    cleanups.push(() => sandbox.close());
    const dir = mkdtempSync(join(tmpdir(), "wsg-drain-"));
    const gateway = await startGatewayProcess({ ...operatorEnv(sandbox, dir) });
    cleanups.push(() => gateway.stop("SIGKILL"));
    const [profile] = sandbox.profiles as [string];
    const inFlight = gql(gateway.url, CreateWorkerSessionDocument, { input: { profileId: profile } }, { token: await aCallerToken({ sub: "drain-test" }) });
    while (sandbox.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
    const exit = gateway.stop("SIGTERM");
    const response = await inFlight;
    expect(response.errors).toBeUndefined();
    expect(response.data?.createWorkerSession.session.status).toBe("ACTIVE");
    expect(await exit).toBe(0);

    const ledger = await createStore({ kind: "sqlite", path: join(dir, "ledger.db") });
    try {
      expect(await ledger.get(profile)).toMatchObject({ profileId: profile, createdBy: "drain-test", revokedAt: null });
    } finally {
      await ledger.close();
    }
  });

  it("records a create that outlives a short SHUTDOWN_GRACE_MS before closing the ledger", async () => {
    const sandbox = await startDeelSandbox({ latencyMs: 1500, rateLimitRps: 0 });
    cleanups.push(() => sandbox.close());
    const dir = mkdtempSync(join(tmpdir(), "wsg-grace-"));
    const gateway = await startGatewayProcess({ ...operatorEnv(sandbox, dir), SHUTDOWN_GRACE_MS: "200" });
    cleanups.push(() => gateway.stop("SIGKILL"));
    const [, profile] = sandbox.profiles as [string, string];
    const inFlight = gql(gateway.url, CreateWorkerSessionDocument, { input: { profileId: profile } }, { token: await aCallerToken({ sub: "grace-test" }) }).catch(
      (error: unknown) => error,
    );
    while (sandbox.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
    expect(await gateway.stop("SIGTERM")).toBe(0);
    await inFlight; // cut off by the 200 ms drain, or answered: either way Deel minted
    expect(sandbox.state(profile)?.revoked).toBe(false);
    const ledger = await createStore({ kind: "sqlite", path: join(dir, "ledger.db") });
    try {
      expect((await ledger.get(profile))?.expiresAt.getTime()).toBe(sandbox.state(profile)?.expiresAt.getTime());
    } finally {
      await ledger.close();
    }
  });

  const prodToken = "deel-org-token-that-must-never-be-echoed";
  it.each([
    ["no Deel token", { AUTH_JWT_SECRET: TEST_JWT_SECRET }, /DEEL_API_TOKEN \(or DEEL_API_TOKEN_FILE\) is required/],
    ["a Deel token with a line break", { DEEL_API_TOKEN: `${prodToken}\nX-Evil: 1`, AUTH_JWT_SECRET: TEST_JWT_SECRET }, /DEEL_API_TOKEN must be a single printable token/],
    ["an unreadable token file", { DEEL_API_TOKEN_FILE: "/nonexistent/token", AUTH_JWT_SECRET: TEST_JWT_SECRET }, /DEEL_API_TOKEN_FILE must name a readable file/],
    ["no way to verify callers", { DEEL_API_TOKEN: prodToken }, /AUTH_JWKS_URL or AUTH_JWT_SECRET is required/],
    ["a malformed store URL", { DEEL_API_TOKEN: prodToken, AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_ALLOW_ANY_ISSUER: "1", SESSION_STORE_URL: "mysql://root:pw@db" }, /SESSION_STORE_URL must be "memory:", "sqlite:<path>", "redis:\/\/…" or "postgres:\/\/…"/],
  ])("refuses to start in production with %s, naming the variable and echoing no secret", async (_name, env, message) => {
    const { code, output } = await runGatewayProcess({ NODE_ENV: "production", ...env });
    // It exits by itself with the configuration error's code (78, EX_CONFIG), at start-up: a process
    // that hung instead would be killed by the runner and report no code at all.
    expect(code).toBe(78);
    expect(output).toMatch(message);
    for (const secret of [TEST_JWT_SECRET, prodToken, "root:pw"]) expect(output).not.toContain(secret);
  });
});
