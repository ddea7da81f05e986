import { createHash } from "node:crypto";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Scope } from "../../src/auth/caller.js";
import type { RecordedRequest } from "../../src/deel/sandbox/server.js";
import { CreateWorkerMagicLinkDocument, CreateWorkerSessionDocument, RevokeWorkerSessionDocument, WorkerSessionDocument } from "../generated/operations.js";
import { aCallerToken, anAdminToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type GraphQLResponse, type TestGateway } from "../support/gateway.js";

const APP = "https://app.example.com";

let gw: TestGateway;
let admin: string;
let P1: string;
let P2: string;
let P3: string;

beforeAll(async () => {
  // The breaker is off so that the failures injected below cannot fail the tests after them fast.
  gw = await startTestGateway({
    env: { DEEL_BREAKER_THRESHOLD: "0", DEEL_RETRY_BASE_MS: "20", MAGIC_LINK_REDIRECT_ORIGINS: `${APP}, http://localhost:3000` },
  });
  admin = await anAdminToken();
  [P1, P2, P3] = gw.sandbox.profiles as [string, string, string];
});
afterAll(() => gw.close());
afterEach(() => gw.sandbox.clearFaults());

type LinkInput = { profileId: string; redirectPath: string; onSuccessRedirectUrl?: string | null; idempotencyKey?: string | null };

function magicLink(input: LinkInput, token: string, url = gw.url) {
  return gql(url, CreateWorkerMagicLinkDocument, { input: { onSuccessRedirectUrl: null, idempotencyKey: null, ...input } }, { token });
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** The sandbox's `POST /magic-link` requests since `from`. */
function linkRequests(from = 0): RecordedRequest[] {
  return gw.sandbox.requests.slice(from).filter((r) => r.method === "POST" && r.path.endsWith("/magic-link"));
}

/** The audit lines written for one response (matched by its request id). */
function auditsOf(response: GraphQLResponse<unknown>): Array<Record<string, unknown>> {
  return gw.logs.audits().filter((a) => a.requestId === response.headers["x-request-id"]);
}

describe("createWorkerMagicLink", () => {
  it("mints a worker token, records the session, and answers with the link only", async () => {
    const from = gw.sandbox.requests.length;
    const response = await magicLink({ profileId: P1, redirectPath: "/contracts/42", onSuccessRedirectUrl: `${APP}/onboarding/done` }, admin);

    expect(response.errors).toBeUndefined();
    const payload = response.data!.createWorkerMagicLink;
    expect(payload.magicLink).toMatch(/^https:\/\/sandbox\.letsdeel\.test\/magic\/[0-9a-f]+\?redirect=%2Fcontracts%2F42$/);
    expect(new Date(payload.expiresAt).getTime()).toBeGreaterThan(Date.now());
    expect(payload.session).toMatchObject({ profileId: P1, status: "ACTIVE", createdBy: "admin-1", revokedAt: null });
    const answered = (JSON.parse(response.raw) as { data: { createWorkerMagicLink: Record<string, unknown> } }).data.createWorkerMagicLink;
    expect(Object.keys(answered).sort()).toEqual(["expiresAt", "magicLink", "session"]);

    // The ledger holds the session the link was made from.
    const read = await gql(gw.url, WorkerSessionDocument, { profileId: P1 }, { token: admin });
    expect(read.data?.workerSession).toMatchObject({ status: "ACTIVE", createdAt: payload.session.createdAt });

    // Deel minted a token and was asked for the link with exactly that token.
    const workerToken = gw.sandbox.state(P1)?.token as string;
    expect(gw.sandbox.requests.slice(from).map((r) => `${r.method} ${r.path.replace(gw.sandbox.url.replace(/^http:\/\/[^/]+/, ""), "")} ${r.status}`)).toEqual([
      "POST /workers/session 201",
      "POST /magic-link 201",
    ]);
    expect(linkRequests(from)[0]?.magicLink).toEqual({
      profileId: P1.toLowerCase(),
      tokenSha256: sha256(workerToken),
      redirectPath: "/contracts/42",
      onSuccessRedirectUrl: `${APP}/onboarding/done`,
    });

    // Neither the caller nor the logs (at trace level) ever saw the worker token; the logs never saw the link.
    expect(response.raw).not.toContain(workerToken);
    expect(gw.logs.text).not.toContain(workerToken);
    expect(gw.logs.text).not.toContain(payload.magicLink);
    expect(gw.logs.text).not.toContain(new URL(payload.magicLink).pathname);
    expect(auditsOf(response)).toEqual([
      { action: "magic_link", sub: "admin-1", profileId: P1.toLowerCase(), outcome: "OK", deelRequestId: null, requestId: response.headers["x-request-id"] },
    ]);
  });

  it("replays the same worker token for the same idempotencyKey, leaving the session unchanged", async () => {
    const from = gw.sandbox.requests.length;
    const first = await magicLink({ profileId: P2, redirectPath: "/profile", idempotencyKey: "welcome-1" }, admin);
    const tokenAfterFirst = gw.sandbox.state(P2)?.token;
    const second = await magicLink({ profileId: P2, redirectPath: "/profile", idempotencyKey: "welcome-1" }, admin);

    expect(first.errors).toBeUndefined();
    expect(second.errors).toBeUndefined();
    expect(gw.sandbox.state(P2)?.token).toBe(tokenAfterFirst);
    expect(second.data?.createWorkerMagicLink.session).toEqual(first.data?.createWorkerMagicLink.session);
    const [a, b] = linkRequests(from);
    expect(a?.magicLink?.tokenSha256).toBe(sha256(tokenAfterFirst as string));
    expect(b?.magicLink?.tokenSha256).toBe(a?.magicLink?.tokenSha256);
    // Deel makes a new link each time; both are for the same token.
    expect(second.data?.createWorkerMagicLink.magicLink).not.toBe(first.data?.createWorkerMagicLink.magicLink);
  });

  it("refuses a replayed key whose session was revoked since, without asking Deel for a link", async () => {
    expect((await magicLink({ profileId: P3, redirectPath: "/kyc", idempotencyKey: "kyc-1" }, admin)).errors).toBeUndefined();
    expect((await gql(gw.url, RevokeWorkerSessionDocument, { input: { profileId: P3 } }, { token: admin })).errors).toBeUndefined();
    const from = gw.sandbox.requests.length;

    const replay = await magicLink({ profileId: P3, redirectPath: "/kyc", idempotencyKey: "kyc-1" }, admin);

    expect(codes(replay)).toEqual(["BAD_USER_INPUT"]);
    expect(replay.errors?.[0]?.message).toMatch(/revoked or has expired; use a new key/);
    expect(linkRequests(from)).toEqual([]);
    expect(auditsOf(replay)).toMatchObject([{ action: "magic_link", outcome: "BAD_USER_INPUT" }]);
  });
});

describe("the rules of createWorkerMagicLink, checked before Deel is called", () => {
  it("refuses a caller without the worker_sessions:magic_link scope", async () => {
    const creator = await aCallerToken({ sub: "creator", scopes: [Scope.read, Scope.create, Scope.revoke, Scope.allProfiles] });
    const before = gw.sandbox.requests.length;
    const response = await magicLink({ profileId: P1, redirectPath: "/contracts" }, creator);
    expect(codes(response)).toEqual(["FORBIDDEN"]);
    expect(response.errors?.[0]?.message).toContain("worker_sessions:magic_link");
    expect(gw.sandbox.requests.length).toBe(before);
    expect(auditsOf(response)).toMatchObject([{ action: "magic_link", sub: "creator", outcome: "FORBIDDEN", profileId: P1 }]);
  });

  it("refuses a profile the caller may not act on", async () => {
    const worker = await aCallerToken({ sub: "worker-p2", scopes: [Scope.magicLink], profiles: [P2] });
    const before = gw.sandbox.requests.length;
    const response = await magicLink({ profileId: P1, redirectPath: "/contracts" }, worker);
    expect(codes(response)).toEqual(["FORBIDDEN"]);
    expect(gw.sandbox.requests.length).toBe(before);
    expect(auditsOf(response)).toMatchObject([{ action: "magic_link", sub: "worker-p2", outcome: "FORBIDDEN" }]);
  });

  it("refuses an anonymous caller", async () => {
    const response = await gql(gw.url, CreateWorkerMagicLinkDocument, { input: { profileId: P1, redirectPath: "/x" } });
    expect(codes(response)).toEqual(["UNAUTHENTICATED"]);
    expect(auditsOf(response)).toMatchObject([{ action: "magic_link", sub: null, outcome: "UNAUTHENTICATED" }]);
  });

  it.each([
    ["an absolute URL", "https://evil"],
    ["a protocol-relative URL", "//evil.com"],
    ["a .. segment", "/a/../b"],
    ["a percent-encoded .. segment", "/%2e%2e/x"],
    ["a backslash", "\\evil"],
    ["513 characters", `/${"a".repeat(512)}`],
    ["an empty path", ""],
    ["a line break", "/a\nb"],
  ])("refuses a redirectPath with %s as BAD_USER_INPUT", async (_name, redirectPath) => {
    const before = gw.sandbox.requests.length;
    const response = await magicLink({ profileId: P1, redirectPath }, admin);
    expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(response.errors?.[0]?.message).toMatch(/^redirectPath must be a relative path/);
    expect(gw.sandbox.requests.length).toBe(before);
    expect(auditsOf(response)).toMatchObject([{ action: "magic_link", outcome: "BAD_USER_INPUT" }]);
  });

  it.each([
    ["an origin outside the allow-list", "https://evil.example.com/done", /not in MAGIC_LINK_REDIRECT_ORIGINS/],
    ["a look-alike host", "https://app.example.com.evil.test/done", /not in MAGIC_LINK_REDIRECT_ORIGINS/],
    ["plain http on an allowed host", "http://app.example.com/done", /only https/],
    ["something that is not a URL", "not a url", /whitespace|not a URL/],
    ["a relative URL", "/done", /not a URL/],
  ])("refuses an onSuccessRedirectUrl with %s as BAD_USER_INPUT", async (_name, onSuccessRedirectUrl, message) => {
    const before = gw.sandbox.requests.length;
    const response = await magicLink({ profileId: P1, redirectPath: "/contracts", onSuccessRedirectUrl }, admin);
    expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(response.errors?.[0]?.message).toMatch(message);
    expect(gw.sandbox.requests.length).toBe(before);
  });

  it("accepts http on an allowed localhost origin", async () => {
    const response = await magicLink({ profileId: P1, redirectPath: "/contracts", onSuccessRedirectUrl: "http://localhost:3000/back" }, admin);
    expect(response.errors).toBeUndefined();
  });

  it("refuses an idempotencyKey over 64 characters, and a profile id that is not a UUID", async () => {
    const before = gw.sandbox.requests.length;
    expect(codes(await magicLink({ profileId: P1, redirectPath: "/x", idempotencyKey: "k".repeat(65) }, admin))).toEqual(["BAD_USER_INPUT"]);
    expect(codes(await magicLink({ profileId: "../x", redirectPath: "/x" }, admin))).toEqual(["BAD_USER_INPUT"]);
    expect(gw.sandbox.requests.length).toBe(before);
  });
});

describe("createWorkerMagicLink never mints and then refuses", () => {
  let P4: string;
  beforeAll(() => {
    P4 = gw.sandbox.profiles[3] as string;
  });

  /** Mints a token for `profileId` through createWorkerSession: the worker's "previous" token. */
  async function previousToken(profileId: string): Promise<string> {
    const created = await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId, idempotencyKey: null } }, { token: admin });
    expect(created.errors).toBeUndefined();
    return created.data!.createWorkerSession.token;
  }

  /** The status the sandbox's `GET /people/me` answers for `token` (200 while it is the live one). */
  async function peopleMe(token: string): Promise<number> {
    const response = await request(`${gw.sandbox.url}/people/me`, { headers: { authorization: `Bearer ${token}` } });
    await response.body.dump();
    return response.statusCode;
  }

  const mints = (from: number) => gw.sandbox.requests.slice(from).filter((r) => r.method === "POST" && r.path.endsWith("/workers/session"));

  it.each([
    ["HTTPS://app.example.com/done", `${APP}/done`],
    ["https:app.example.com/x", `${APP}/x`],
    ["https:/app.example.com/x", `${APP}/x`],
  ])("takes onSuccessRedirectUrl %j cleanly, forwarding %j to Deel", async (onSuccessRedirectUrl, normalized) => {
    const from = gw.sandbox.requests.length;
    const response = await magicLink({ profileId: P4, redirectPath: "/contracts", onSuccessRedirectUrl }, admin);

    // Either refused before Deel is asked anything, or a clean link: never a mint and then a refusal.
    if (response.errors !== undefined) expect(mints(from)).toEqual([]);
    expect(response.errors).toBeUndefined();
    expect(mints(from).map((r) => r.status)).toEqual([201]);
    expect(linkRequests(from).map((r) => [r.status, r.magicLink?.onSuccessRedirectUrl])).toEqual([[201, normalized]]);
  });

  it.each([
    ["an onSuccessRedirectUrl on another origin, upper-case scheme", { onSuccessRedirectUrl: "HTTPS://evil.example.com/done" }],
    ["an onSuccessRedirectUrl on another origin, without slashes", { onSuccessRedirectUrl: "https:evil.example.com/x" }],
    ["an onSuccessRedirectUrl with plain http, without slashes", { onSuccessRedirectUrl: "http:app.example.com/x" }],
    ["a redirectPath with a ..; segment", { redirectPath: "/..;/admin" }],
    ["a redirectPath with a scheme in a query value", { redirectPath: "/x?next=javascript:alert(1)" }],
    ["a redirectPath with a full-width solidus", { redirectPath: "/\uff0fevil.com" }],
    ["a redirectPath with a zero-width space", { redirectPath: "/a\u200bb" }],
    ["a redirectPath percent-encoded many times", { redirectPath: "/%2525252e%2525252e/admin" }],
  ])("refuses %s before any Deel call, leaving the worker's previous token live", async (_name, input) => {
    const token = await previousToken(P4);
    expect(await peopleMe(token)).toBe(200);
    const from = gw.sandbox.requests.length;

    const response = await magicLink({ profileId: P4, redirectPath: "/contracts", ...input }, admin);

    expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(gw.sandbox.requests.slice(from)).toEqual([]);
    expect(await peopleMe(token)).toBe(200);
    expect(auditsOf(response)).toMatchObject([{ action: "magic_link", outcome: "BAD_USER_INPUT" }]);
  });
});

describe("Deel failing on /magic-link", () => {
  it("answers BAD_USER_INPUT, not retried, when Deel refuses a worker token that died outside the gateway", async () => {
    const key = "dead-token-1";
    expect((await magicLink({ profileId: P1, redirectPath: "/x", idempotencyKey: key }, admin)).errors).toBeUndefined();
    // Revoked at Deel directly, by another integration: the ledger still reads ACTIVE.
    const revoked = await request(`${gw.sandbox.url}/workers/${P1}/session`, { method: "DELETE", headers: { authorization: `Bearer ${gw.sandbox.orgToken}` } });
    await revoked.body.dump();
    expect(revoked.statusCode).toBe(204);
    const from = gw.sandbox.requests.length;

    const response = await magicLink({ profileId: P1, redirectPath: "/x", idempotencyKey: key }, admin);

    expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(response.errors?.[0]?.message).toMatch(/refused the worker token .* retry with a new idempotencyKey/);
    expect(linkRequests(from).map((r) => r.status)).toEqual([401]);
    expect(auditsOf(response)).toMatchObject([{ action: "magic_link", outcome: "BAD_USER_INPUT" }]);
    expect(gw.logs.text).not.toContain(gw.sandbox.state(P1)?.token as string);
  });

  it("retries a 500 with an {\"error\"} body, then answers UPSTREAM_UNAVAILABLE; the minted session stays recorded", async () => {
    gw.sandbox.injectFault({ kind: "raw", status: 500, body: '{"error":"Internal Server Error"}' }, { route: "magic_link" });
    const from = gw.sandbox.requests.length;

    const response = await magicLink({ profileId: P2, redirectPath: "/x" }, admin);

    expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(linkRequests(from).map((r) => r.status)).toEqual([500, 500, 500]);
    expect(gw.sandbox.requests.slice(from).filter((r) => r.path.endsWith("/workers/session"))).toHaveLength(1);
    const read = await gql(gw.url, WorkerSessionDocument, { profileId: P2 }, { token: admin });
    expect(read.data?.workerSession?.status).toBe("ACTIVE");
    expect(new Date(read.data!.workerSession!.expiresAt).getTime()).toBe(gw.sandbox.state(P2)?.expiresAt.getTime());
    expect(auditsOf(response)).toMatchObject([{ action: "magic_link", outcome: "UPSTREAM_UNAVAILABLE" }]);
  });

  it("treats a link that is not https as an unusable answer: retried once, then UPSTREAM_UNAVAILABLE", async () => {
    const body = JSON.stringify({ data: { magic_link: "http://insecure.example/magic/1", expires_at: new Date(Date.now() + 600_000).toISOString() } });
    gw.sandbox.injectFault({ kind: "raw", status: 201, body }, { route: "magic_link" });
    const from = gw.sandbox.requests.length;
    const response = await magicLink({ profileId: P2, redirectPath: "/x" }, admin);
    expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(linkRequests(from)).toHaveLength(2);
    expect(response.raw).not.toContain("insecure.example");
  });
});

describe("createWorkerMagicLink on an operator's defaults", () => {
  let plain: TestGateway;
  beforeAll(async () => {
    plain = await startTestGateway({ env: { DEEL_TIMEOUT_MS: "1000" } });
  });
  afterAll(() => plain.close());

  it("refuses any onSuccessRedirectUrl while MAGIC_LINK_REDIRECT_ORIGINS is unset, saying the operator must set it", async () => {
    const [profile] = plain.sandbox.profiles as [string];
    const response = await magicLink({ profileId: profile, redirectPath: "/x", onSuccessRedirectUrl: `${APP}/done` }, admin, plain.url);
    expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(response.errors?.[0]?.message).toMatch(/the operator must set MAGIC_LINK_REDIRECT_ORIGINS/);
    expect(plain.sandbox.requests).toHaveLength(0);
    expect((await magicLink({ profileId: profile, redirectPath: "/x" }, admin, plain.url)).errors).toBeUndefined();
  });

  it("gives the mint and the link one deadline together, counted from the mutation's arrival", async () => {
    // Each call alone fits in DEEL_TIMEOUT_MS (1000 ms); the two together do not.
    plain.sandbox.setLatency(700);
    try {
      const [, profile] = plain.sandbox.profiles as [string, string];
      const response = await magicLink({ profileId: profile, redirectPath: "/x" }, admin, plain.url);
      expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
      expect(plain.sandbox.state(profile)?.revoked).toBe(false);
    } finally {
      plain.sandbox.setLatency(0);
    }
  });
});
