import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Scope } from "../../src/auth/caller.js";
import {
  CreateWorkerSessionDocument,
  RevokeWorkerSessionDocument,
  WorkerSessionDocument,
} from "../generated/operations.js";
import { aCallerToken, anAdminToken, aWorkerToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type TestGateway } from "../support/gateway.js";

let gw: TestGateway;
let admin: string;
let P1: string;
let P2: string;

beforeAll(async () => {
  // The fault tests below share this gateway with the ones after them: with the circuit breaker on,
  // their failures in a row would open it and fail the next tests fast. resilience.test.ts covers it.
  gw = await startTestGateway({ env: { DEEL_BREAKER_THRESHOLD: "0" } });
  admin = await anAdminToken();
  [P1, P2] = gw.sandbox.profiles as [string, string];
});
afterAll(() => gw.close());
afterEach(() => {
  gw.sandbox.clearFaults();
  gw.sandbox.setTokenLifetime(24 * 3600 * 1000);
});

/** Asks the sandbox which token is live, the way a worker's app would use it. */
async function peopleMe(token: string): Promise<number> {
  const response = await request(`${gw.sandbox.url}/people/me`, { headers: { authorization: `Bearer ${token}` } });
  await response.body.dump();
  return response.statusCode;
}

function create(profileId: string, token: string, idempotencyKey?: string) {
  return gql(gw.url, CreateWorkerSessionDocument, { input: { profileId, idempotencyKey: idempotencyKey ?? null } }, { token });
}
function revoke(profileId: string, token: string) {
  return gql(gw.url, RevokeWorkerSessionDocument, { input: { profileId } }, { token });
}
function read(profileId: string, token: string) {
  return gql(gw.url, WorkerSessionDocument, { profileId }, { token });
}

describe("the session lifecycle", () => {
  it("creates, reads ACTIVE, revokes at Deel and reads REVOKED", async () => {
    const created = await create(P1, admin);
    expect(created.errors).toBeUndefined();
    const { token, session } = created.data!.createWorkerSession;
    expect(token).toBe(gw.sandbox.state(P1)?.token);
    expect(session).toMatchObject({ profileId: P1, status: "ACTIVE", createdBy: "admin-1", revokedAt: null, revokedBy: null });
    expect(new Date(session.expiresAt).getTime()).toBe(gw.sandbox.state(P1)?.expiresAt.getTime());
    expect(await peopleMe(token)).toBe(200);

    const active = await read(P1, admin);
    expect(active.data?.workerSession).toMatchObject({ status: "ACTIVE", createdAt: session.createdAt });

    const revoked = await revoke(P1, await anAdminToken("admin-2"));
    expect(revoked.errors).toBeUndefined();
    expect(revoked.data?.revokeWorkerSession).toMatchObject({
      profileId: P1,
      session: { status: "REVOKED", createdBy: "admin-1", revokedBy: "admin-2" },
    });
    expect(gw.sandbox.state(P1)?.revoked).toBe(true);
    expect(await peopleMe(token)).toBe(401);

    const after = await read(P1, admin);
    expect(after.data?.workerSession?.status).toBe("REVOKED");
    expect(after.data?.workerSession?.revokedAt).toBe(revoked.data?.revokeWorkerSession.revokedAt);
  });

  it("reads EXPIRED once Deel's expires_at has passed", async () => {
    gw.sandbox.setTokenLifetime(300);
    const created = await create(P2, admin);
    expect(created.data?.createWorkerSession.session.status).toBe("ACTIVE");
    await new Promise((resolve) => setTimeout(resolve, 400));
    const read1 = await read(P2, admin);
    expect(read1.data?.workerSession?.status).toBe("EXPIRED");
    expect(await peopleMe(created.data!.createWorkerSession.token)).toBe(401);
  });

  it("replaces the first session when a second is created", async () => {
    const first = await create(P1, admin);
    const second = await create(P1, await anAdminToken("admin-3"));
    const t1 = first.data!.createWorkerSession.token;
    const t2 = second.data!.createWorkerSession.token;
    expect(t2).not.toBe(t1);
    expect(await peopleMe(t1)).toBe(401);
    expect(await peopleMe(t2)).toBe(200);
    const now = await read(P1, admin);
    expect(now.data?.workerSession).toMatchObject({ status: "ACTIVE", createdBy: "admin-3" });
    expect(now.data?.workerSession?.createdAt).toBe(second.data!.createWorkerSession.session.createdAt);
  });

  it("returns the same token for the same idempotencyKey, and never shares a key across callers", async () => {
    const key = `order-${Date.now()}`;
    const a = await create(P2, admin, key);
    const b = await create(P2, admin, key);
    expect(a.errors).toBeUndefined();
    expect(b.data?.createWorkerSession.token).toBe(a.data?.createWorkerSession.token);
    expect(b.data?.createWorkerSession.session.createdAt).toBe(a.data?.createWorkerSession.session.createdAt);
    expect(await peopleMe(a.data!.createWorkerSession.token)).toBe(200);

    const other = await create(P2, await anAdminToken("someone-else"), key);
    expect(other.data?.createWorkerSession.token).not.toBe(a.data?.createWorkerSession.token);
  });

  it("answers null for a profile it never minted a session for", async () => {
    const result = await read(gw.sandbox.profiles[4] as string, admin);
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ workerSession: null });
  });

  it("never lets a query select the token", async () => {
    const direct = await gql(gw.url, `query($p: ID!) { workerSession(profileId: $p) { token } }`, { p: P1 }, { token: admin });
    expect(codes(direct)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    const types = await gql<{ __schema: { types: Array<{ name: string; fields: Array<{ name: string }> | null }> } }, unknown>(
      gw.url,
      `{ __schema { types { name fields { name } } } }`,
      undefined,
      { token: admin },
    );
    const withToken = types.data!.__schema.types.filter((t) => t.fields?.some((f) => /token/i.test(f.name)));
    expect(withToken.map((t) => t.name)).toEqual(["CreateWorkerSessionPayload"]);
  });
});

describe("profile ids are checked before anything is called", () => {
  const bad = ["../x", "%2e%2e%2f", "a?b=1", "", "not-a-uuid", `${"6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50"}/../x`, "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f5"];

  it.each(bad)("refuses %j as BAD_USER_INPUT on read, create and revoke, and Deel sees nothing", async (id) => {
    const before = gw.sandbox.requests.length;
    for (const response of [await read(id, admin), await create(id, admin), await revoke(id, admin)]) {
      expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    }
    expect(gw.sandbox.requests.length).toBe(before);
  });

  it("refuses an idempotencyKey over 64 characters", async () => {
    const before = gw.sandbox.requests.length;
    const response = await create(P1, admin, "k".repeat(65));
    expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(gw.sandbox.requests.length).toBe(before);
    expect(codes(await create(P1, admin, "k".repeat(64)))).toEqual([]);
  });
});

describe("the error table", () => {
  it("UNAUTHENTICATED for a missing, malformed, expired, wrongly signed or wrongly addressed token", async () => {
    const noSub = await aCallerToken({ sub: "" });
    const cases: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer not-a-jwt" },
      { authorization: "Basic YWRtaW46YWRtaW4=" },
      { authorization: `Bearer ${await aCallerToken({ expiresIn: -120 })}` },
      { authorization: `Bearer ${await aCallerToken({ secret: "another-secret-that-is-long-enough-for-hs256!!" })}` },
      { authorization: `Bearer ${await aCallerToken({ issuer: "https://evil.test" })}` },
      { authorization: `Bearer ${await aCallerToken({ audience: "someone-else" })}` },
      { authorization: `Bearer ${noSub}` },
    ];
    for (const headers of cases) {
      const response = await gql(gw.url, WorkerSessionDocument, { profileId: P1 }, { headers });
      expect(codes(response), JSON.stringify(headers).slice(0, 40)).toEqual(["UNAUTHENTICATED"]);
      expect(response.raw).not.toContain("stacktrace");
    }
  });

  it("accepts a token within the 60 s clock tolerance", async () => {
    const response = await read(P1, await aCallerToken({ expiresIn: -30 }));
    expect(response.errors).toBeUndefined();
  });

  it("FORBIDDEN without the scope, and Deel is not called", async () => {
    const readOnly = await aCallerToken({ scopes: [Scope.read, Scope.allProfiles] });
    const before = gw.sandbox.requests.length;
    expect(codes(await create(P1, readOnly))).toEqual(["FORBIDDEN"]);
    expect(codes(await revoke(P1, readOnly))).toEqual(["FORBIDDEN"]);
    expect(codes(await read(P1, await aCallerToken({ scopes: [Scope.create, Scope.allProfiles] })))).toEqual(["FORBIDDEN"]);
    expect(gw.sandbox.requests.length).toBe(before);
  });

  it("BAD_USER_INPUT when Deel answers 400, with Deel's request id", async () => {
    gw.sandbox.injectFault({ kind: "status", status: 400 }, { times: 1 });
    const response = await create(P1, admin);
    expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(response.errors?.[0]?.extensions?.deelRequestId).toMatch(/^[0-9a-f]+$/);
  });

  it("NOT_FOUND for a profile Deel does not know, on create and revoke, and the ledger is unchanged", async () => {
    const unknown = "11111111-2222-4333-8444-555555555555";
    const created = await create(unknown, admin);
    expect(codes(created)).toEqual(["NOT_FOUND"]);
    expect(created.errors?.[0]?.extensions?.deelRequestId).toEqual(expect.any(String));
    expect(codes(await revoke(unknown, admin))).toEqual(["NOT_FOUND"]);
    expect((await read(unknown, admin)).data?.workerSession).toBeNull();
  });

  it("RATE_LIMITED with an integer retryAfterSeconds when Deel keeps answering 429", async () => {
    gw.sandbox.injectFault({ kind: "rate_limit", retryAfterSeconds: 60 });
    const response = await create(P1, admin);
    expect(codes(response)).toEqual(["RATE_LIMITED"]);
    const seconds = response.errors?.[0]?.extensions?.retryAfterSeconds;
    expect(Number.isInteger(seconds)).toBe(true);
    expect(seconds as number).toBeGreaterThanOrEqual(1);
  });

  it("UPSTREAM_UNAVAILABLE for Deel 5xx and for a body that is not JSON, without showing the body", async () => {
    gw.sandbox.injectFault({ kind: "status", status: 503 });
    expect(codes(await create(P1, admin))).toEqual(["UPSTREAM_UNAVAILABLE"]);
    gw.sandbox.clearFaults();
    gw.sandbox.injectFault({ kind: "non_json", status: 201 });
    const response = await create(P1, admin);
    expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(response.raw).not.toMatch(/<html|<body/i);
  });

  it("INTERNAL_SERVER_ERROR with a generic message when something unexpected breaks, and the detail is logged", async () => {
    const broken = await startTestGateway({
      overrides: {
        store: {
          get: async () => {
            throw new Error("disk on fire at /var/lib/secret-path");
          },
          getMany: async () => {
            throw new Error("disk on fire at /var/lib/secret-path");
          },
          getStates: async () => {
            throw new Error("disk on fire at /var/lib/secret-path");
          },
          put: async () => undefined,
          putUnlessOvertaken: async () => true,
          markRevoked: async () => null,
          beginMint: async () => true,
          endMint: async () => undefined,
          getIntents: async (ids) => ids.map(() => null),
          listByCreator: async () => [],
          listIntentsByCreator: async () => [],
          appendHistory: async () => undefined,
          readHistory: async (requests) => requests.map(() => ({ events: [], hasNextPage: false })),
          ping: async () => undefined,
          close: async () => undefined,
        },
      },
    });
    try {
      const response = await gql(broken.url, WorkerSessionDocument, { profileId: P1 }, { token: admin });
      expect(codes(response)).toEqual(["INTERNAL_SERVER_ERROR"]);
      expect(response.errors?.[0]?.message).toBe("Internal server error");
      expect(response.raw).not.toContain("disk on fire");
      const line = broken.logs.lines.find((l) => l.includes("disk on fire"));
      expect(line).toBeDefined();
      expect(JSON.parse(line as string)).toMatchObject({ level: "error", requestId: expect.any(String) });
    } finally {
      await broken.close();
    }
  });
});

describe("upstream failures of the gateway's own making", () => {
  it("UPSTREAM_CREDENTIALS when Deel refuses our organization token (401 and 403)", async () => {
    for (const token of ["deel-token-that-deel-does-not-know", gw.sandbox.readOnlyToken]) {
      const wrong = await startTestGateway({ env: { DEEL_API_TOKEN: token } });
      try {
        const response = await gql(wrong.url, CreateWorkerSessionDocument, { input: { profileId: P1 } }, { token: admin });
        expect(codes(response)).toEqual(["UPSTREAM_CREDENTIALS"]);
        expect(response.raw).not.toContain(token);
        expect(wrong.logs.text).not.toContain(token);
      } finally {
        await wrong.close();
      }
    }
  });

  it("UPSTREAM_UNAVAILABLE when Deel hangs past DEEL_TIMEOUT_MS, or refuses connections", async () => {
    const slow = await startTestGateway({ env: { DEEL_TIMEOUT_MS: "400" } });
    try {
      slow.sandbox.injectFault({ kind: "hang" });
      const response = await gql(slow.url, CreateWorkerSessionDocument, { input: { profileId: P1 } }, { token: admin });
      expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    } finally {
      await slow.close();
    }
    const down = await startTestGateway();
    try {
      await down.sandbox.close();
      const response = await gql(down.url, RevokeWorkerSessionDocument, { input: { profileId: P1 } }, { token: admin });
      expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    } finally {
      await down.app.close();
    }
  });
});

describe("the caller rules", () => {
  it("lets a worker create, read and revoke its own session", async () => {
    const own = await aWorkerToken(P2);
    const created = await create(P2, own);
    expect(created.errors).toBeUndefined();
    expect(created.data?.createWorkerSession.session.createdBy).toBe(`worker-${P2.slice(0, 8)}`);
    expect((await read(P2, own)).data?.workerSession?.status).toBe("ACTIVE");
    expect((await revoke(P2, own)).data?.revokeWorkerSession.session?.status).toBe("REVOKED");
  });

  it("refuses a foreign profile on create, read and revoke, before Deel is called", async () => {
    const own = await aWorkerToken(P2);
    await create(P1, admin);
    const before = gw.sandbox.requests.length;
    expect(codes(await create(P1, own))).toEqual(["FORBIDDEN"]);
    expect(codes(await read(P1, own))).toEqual(["FORBIDDEN"]);
    expect(codes(await revoke(P1, own))).toEqual(["FORBIDDEN"]);
    expect(gw.sandbox.requests.length).toBe(before);
    expect(gw.sandbox.state(P1)?.revoked).toBe(false);
  });

  it("lets worker_sessions:all_profiles reach any profile, also with scopes given as `scp`", async () => {
    const token = await aCallerToken({ scopes: [Scope.read, Scope.create, Scope.allProfiles], asScp: true });
    expect((await create(P1, token)).errors).toBeUndefined();
    expect((await read(P2, token)).errors).toBeUndefined();
    expect(codes(await revoke(P1, token))).toEqual(["FORBIDDEN"]);
  });

  it("matches profile ids regardless of letter case", async () => {
    const own = await aWorkerToken(P1.toUpperCase());
    const created = await create(P1, own);
    expect(created.errors).toBeUndefined();
    expect((await read(P1.toUpperCase(), own)).data?.workerSession?.profileId).toBe(P1);
  });
});

describe("what the logs hold", () => {
  it("has one audit line per create and revoke, and no worker, organization or caller token at trace level", async () => {
    const token = await aWorkerToken(P1, "audited-worker");
    const created = await create(P1, token);
    await revoke(P1, token);
    await create("11111111-2222-4333-8444-555555555555", admin);
    const workerToken = created.data!.createWorkerSession.token;
    const audits = gw.logs.audits().filter((a) => a.sub === "audited-worker");
    expect(audits).toEqual([
      expect.objectContaining({ action: "create", profileId: P1, outcome: "OK", requestId: expect.any(String) }),
      expect.objectContaining({ action: "revoke", profileId: P1, outcome: "OK" }),
    ]);
    expect(gw.logs.lines.length).toBeGreaterThan(10);
    for (const secret of [workerToken, gw.sandbox.orgToken, token, admin]) {
      expect(gw.logs.text).not.toContain(secret);
    }
  });
});
