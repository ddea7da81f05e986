import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Scope } from "../../src/auth/caller.js";
import type { ProfileState } from "../../src/sessions/store.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { Ledger } from "../../src/sessions/ledger.js";
import { CreateWorkerSessionDocument, WorkerSessionDocument } from "../generated/operations.js";
import { aCallerToken, anAdminToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type TestGateway } from "../support/gateway.js";

/** A ledger that counts batch reads, to prove a refused request read nothing. */
class CountingStore extends Ledger {
  batchReads = 0;
  constructor() {
    super(createStorage({ kind: "memory" }), { retentionMs: null });
  }
  override getStates(profileIds: readonly string[]): Promise<ProfileState[]> {
    this.batchReads += 1;
    return super.getStates(profileIds);
  }
}

const ENTITIES = `query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Worker { session { status } } } }`;

/** One operation with `aliases` `_entities` fields, each given its own variable. */
function aliasedEntities(aliases: number): string {
  const variables = Array.from({ length: aliases }, (_, i) => `$r${i}: [_Any!]!`).join(", ");
  const fields = Array.from({ length: aliases }, (_, i) => `_v${i}__entities: _entities(representations: $r${i}) { ... on Worker { session { status } } }`);
  return `query (${variables}) { ${fields.join(" ")} }`;
}

function workers(count: number, profileId: string): Array<{ __typename: "Worker"; profileId: string }> {
  return Array.from({ length: count }, () => ({ __typename: "Worker", profileId }));
}

/** 5 aliases × 2,400 representations in one body under 100 kB: the shape of a CPU attack. */
function attackVariables(): Record<string, unknown> {
  return Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`r${i}`, Array.from({ length: 2400 }, () => ({}))]));
}

let gw: TestGateway;
let store: CountingStore;
let admin: string;
let P1: string;

beforeAll(async () => {
  store = new CountingStore();
  gw = await startTestGateway({ env: { NODE_ENV: "production" }, overrides: { store } });
  admin = await anAdminToken();
  [P1] = gw.sandbox.profiles as [string];
});
afterAll(() => gw.close());

describe("entity fetches: the representation cap and authentication come before any resolver", () => {
  it("refuses an anonymous entity fetch with 401 UNAUTHENTICATED, reading nothing", async () => {
    const before = store.batchReads;
    const response = await gql(gw.url, ENTITIES, { representations: workers(3, P1) });
    expect(response.status).toBe(401);
    expect(codes(response)).toEqual(["UNAUTHENTICATED"]);
    expect(response.data ?? null).toBeNull();
    expect(store.batchReads).toBe(before);
  });

  it("refuses 5 aliases × 2,400 representations with 400 BAD_USER_INPUT, reading nothing, with or without a caller", async () => {
    const variables = attackVariables();
    const before = store.batchReads;
    const asAdmin = await gql(gw.url, aliasedEntities(5), variables, { token: admin });
    expect(asAdmin.status).toBe(400);
    expect(codes(asAdmin)).toEqual(["BAD_USER_INPUT"]);
    expect(asAdmin.errors?.[0]?.message).toMatch(/at most 500 representations/);
    const anonymous = await gql(gw.url, aliasedEntities(5), variables);
    expect(anonymous.status).toBe(401);
    expect(store.batchReads).toBe(before);
  });

  it("answers a router batch of exactly 500 representations, split over aliases or not, and refuses 501", async () => {
    const whole = await gql<{ _entities: unknown[] }, unknown>(gw.url, ENTITIES, { representations: workers(500, P1) }, { token: admin });
    expect(whole.status).toBe(200);
    expect(whole.errors).toBeUndefined();
    expect(whole.data?._entities).toHaveLength(500);
    const split = await gql(gw.url, aliasedEntities(2), { r0: workers(250, P1), r1: workers(250, P1) }, { token: admin });
    expect(split.status).toBe(200);
    expect(split.errors).toBeUndefined();
    const over = await gql(gw.url, aliasedEntities(3), { r0: workers(167, P1), r1: workers(167, P1), r2: workers(167, P1) }, { token: admin });
    expect(codes(over)).toEqual(["BAD_USER_INPUT"]);
  });

  it("keeps /healthz answering while 8 over-cap requests are refused", async () => {
    const variables = attackVariables();
    const attacks = Array.from({ length: 8 }, () => gql(gw.url, aliasedEntities(5), variables));
    const health = await request(`${gw.origin}/healthz`);
    expect(health.statusCode).toBe(200);
    expect(await health.body.json()).toEqual({ status: "ok" });
    const refused = await Promise.all(attacks);
    expect(refused.map((r) => r.status)).toEqual(Array(8).fill(401));
  });

  it("lets a router's merged fetch of 8 aliased _entities fields through the alias limit", async () => {
    const variables = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`r${i}`, workers(1, P1)]));
    const response = await gql(gw.url, aliasedEntities(8), variables, { token: admin });
    expect(response.status).toBe(200);
    expect(response.errors).toBeUndefined();
  });

  it("follows root fragments and variable defaults: wrapping _entities is no way around the guard", async () => {
    const before = store.batchReads;
    const inline = `query ($r: [_Any!]!) { ... on Query { _entities(representations: $r) { ... on Worker { session { status } } } } }`;
    const anonymous = await gql(gw.url, inline, { r: workers(3, P1) });
    expect(anonymous.status).toBe(401);
    expect(codes(anonymous)).toEqual(["UNAUTHENTICATED"]);
    const spread = `query ($r: [_Any!]!) { ...F } fragment F on Query { _entities(representations: $r) { __typename } }`;
    expect(codes(await gql(gw.url, spread, { r: workers(501, P1) }, { token: admin }))).toEqual(["BAD_USER_INPUT"]);
    // Representations given as the variable's default count like ones given in the variables.
    const small = await startTestGateway({ env: { MAX_ENTITY_REPRESENTATIONS: "10" } });
    try {
      const reps = Array.from({ length: 11 }, () => `{ __typename: "Worker", profileId: "${P1}" }`).join(", ");
      const defaulted = `query ($r: [_Any!]! = [${reps}]) { _entities(representations: $r) { __typename } }`;
      expect(codes(await gql(small.url, defaulted, {}, { token: admin }))).toEqual(["BAD_USER_INPUT"]);
    } finally {
      await small.close();
    }
    expect(store.batchReads).toBe(before);
  });

  it("holds router-shaped documents to their own bounds: merged fetches, one _service, few nested aliases", async () => {
    const variables = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`r${i}`, workers(1, P1)]));
    expect((await gql(gw.url, aliasedEntities(24), variables(24), { token: admin })).errors).toBeUndefined();
    expect(codes(await gql(gw.url, aliasedEntities(25), variables(25), { token: admin }))).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    const services = `{ ${Array.from({ length: 3 }, (_, i) => `s${i}: _service { sdl }`).join(" ")} }`;
    expect(codes(await gql(gw.url, services))).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    const nested = `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Worker { session { ${Array.from({ length: 6 }, (_, i) => `a${i}: status`).join(" ")} } } } }`;
    expect(codes(await gql(gw.url, nested, { r: workers(1, P1) }, { token: admin }))).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
  });

  it("still refuses a client operation with more aliases than the limit", async () => {
    const fields = Array.from({ length: 8 }, (_, i) => `a${i}: workerSession(profileId: "${P1}") { status }`).join(" ");
    const response = await gql(gw.url, `{ ${fields} }`, undefined, { token: admin });
    expect(codes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
  });
});

describe("entity fetches are weighed by what they cost: representations × guarded fields", () => {
  /** One `_entities` field whose fragment selects `session` under `selections` response keys (`session`, then aliases `s1`, `s2`, …). */
  const manySessions = (selections: number) =>
    `query ($r: [_Any!]!) { _entities(representations: $r) { ...W } } fragment W on Worker { ${Array.from({ length: selections }, (_, i) => `${i === 0 ? "" : `s${i}: `}session { status }`).join(" ")} }`;

  it("refuses 500 representations × 6 session selections, 5 of them aliases (cost 3,000), with 400, whatever the caller's scopes, reading nothing", async () => {
    const noScope = await aCallerToken({ scopes: [] });
    const before = store.batchReads;
    for (const token of [noScope, admin]) {
      const response = await gql(gw.url, manySessions(6), { r: workers(500, P1) }, { token });
      expect(response.status).toBe(400);
      expect(codes(response)).toEqual(["BAD_USER_INPUT"]);
      // The refusal names the limit and the setting that changes it.
      expect(response.errors?.[0]?.message).toMatch(/cost at most 1000 .*costs 3000.*MAX_ENTITY_COST/);
    }
    expect(store.batchReads).toBe(before);
  });

  it("answers a fetch within budget that the caller may not read with one error per field path, not one per entity", async () => {
    const noScope = await aCallerToken({ scopes: [] });
    const response = await gql<{ _entities: Array<Record<string, unknown>> }, unknown>(gw.url, manySessions(2), { r: workers(500, P1) }, { token: noScope });
    expect(response.status).toBe(200);
    expect(response.data?._entities).toHaveLength(500);
    expect(response.data?._entities.every((entity) => entity.session === null && entity.s1 === null)).toBe(true);
    expect(response.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([
      ["FORBIDDEN", ["_entities", 0, "session"]],
      ["FORBIDDEN", ["_entities", 0, "s1"]],
    ]);
    expect(response.errors?.map((e) => e.message)).toEqual([
      expect.stringMatching(/refused for 500 entities at _entities\.\*\.session/),
      expect.stringMatching(/refused for 500 entities at _entities\.\*\.s1/),
    ]);
  });
});

describe("error logs are bounded per request", () => {
  it("writes one error line with a count for 500 representations that each fail", async () => {
    const requestId = "req-log-flood";
    const response = await gql(
      gw.url,
      ENTITIES,
      { representations: Array.from({ length: 500 }, () => ({ __typename: "Query" })) },
      { token: admin, headers: { "x-request-id": requestId } },
    );
    expect(response.errors).toHaveLength(500);
    const lines = gw.logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.requestId === requestId);
    const errorLines = lines.filter((line) => (line.level as number | string) === "error" || line.level === 50);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toMatchObject({ count: 500 });
    expect((errorLines[0]?.paths as unknown[]).length).toBeLessThanOrEqual(5);
    expect(gw.logs.text.length).toBeLessThan(64 * 1024);
  });
});

describe("a revoke without the read scope", () => {
  it("revokes, but does not show the ledger's record (FORBIDDEN at its path)", async () => {
    const P2 = gw.sandbox.profiles[1] as string;
    await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId: P2 } }, { token: await anAdminToken("minter") });
    const revoker = await aCallerToken({ sub: "revoke-only", scopes: [Scope.revoke, Scope.allProfiles] });
    const response = await gql<{ revokeWorkerSession: { profileId: string; revokedAt: string; session: unknown } }, unknown>(
      gw.url,
      `mutation ($p: ID!) { revokeWorkerSession(input: { profileId: $p }) { profileId revokedAt session { createdBy createdAt expiresAt } } }`,
      { p: P2 },
      { token: revoker },
    );
    expect(response.data?.revokeWorkerSession).toMatchObject({ profileId: P2, session: null });
    expect(response.data?.revokeWorkerSession.revokedAt).toEqual(expect.any(String));
    expect(response.errors).toEqual([expect.objectContaining({ path: ["revokeWorkerSession", "session"], extensions: { code: "FORBIDDEN" } })]);
    expect(response.raw).not.toContain("minter");
    const read = await gql(gw.url, WorkerSessionDocument, { profileId: P2 }, { token: admin });
    expect(read.data).toMatchObject({ workerSession: { status: "REVOKED", revokedBy: "revoke-only" } });
  });

  it("shows the record to a revoker that also holds the read scope", async () => {
    const P3 = gw.sandbox.profiles[2] as string;
    await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId: P3 } }, { token: admin });
    const revoker = await aCallerToken({ sub: "revoke-read", scopes: [Scope.revoke, Scope.read, Scope.allProfiles] });
    const response = await gql(gw.url, `mutation ($p: ID!) { revokeWorkerSession(input: { profileId: $p }) { session { status createdBy } } }`, { p: P3 }, { token: revoker });
    expect(response.errors).toBeUndefined();
    expect(response.data).toEqual({ revokeWorkerSession: { session: { status: "REVOKED", createdBy: "admin-1" } } });
  });
});
