import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORKER_SESSIONS_SUBGRAPH } from "../../examples/routers/apollo-gateway.js";
import { CreateWorkerSessionDocument, RevokeWorkerSessionDocument } from "../generated/operations.js";
import { anAdminToken, aWorkerToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type GraphQLResponse, type TestGateway } from "../support/gateway.js";
import {
  composeSupergraph,
  startApolloGatewayRouter,
  startHiveGatewayRouter,
  startHrSubgraph,
  startRecordingProxy,
  type HrSubgraph,
  type RecordingProxy,
  type Running,
} from "../support/supergraph.js";

const ROUTER_SECRET = "router-secret-for-the-tests-0123";
const PROFILES = Array.from({ length: 8 }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`);
const REVOKED = 5;
const OWN = 3;

/**
 * Eight workers of the HR subgraph, each with a different `session` selection: a router cannot
 * fold them into one `_entities` field, so Hive merges them into one request with aliases.
 */
const SELECTIONS = [
  "status",
  "status profileId",
  "status createdBy",
  "status createdAt",
  "status expiresAt",
  "status revokedAt revokedBy",
  "status profileId createdBy",
  "status createdAt expiresAt",
];
const TEAM = `query Team {\n${PROFILES.map((id, i) => `  w${i}: worker(profileId: "${id}") { profileId name session { ${SELECTIONS[i]} } }`).join("\n")}\n}`;
const ALIASES = PROFILES.map((_, i) => `w${i}`);

type Team = Record<string, { profileId: string; name: string; session: Record<string, unknown> | null } | null>;

let gw: TestGateway;
let hr: HrSubgraph;
let sessions: RecordingProxy;
let supergraphSdl: string;
let admin: string;

beforeAll(async () => {
  gw = await startTestGateway({ env: { ROUTER_SECRET }, sandbox: { profiles: PROFILES } });
  admin = await anAdminToken();
  const asRouter = { token: admin, headers: { "router-authorization": ROUTER_SECRET } };
  for (const profileId of PROFILES) {
    const created = await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId } }, asRouter);
    expect(created.errors).toBeUndefined();
  }
  const revoked = await gql(gw.url, RevokeWorkerSessionDocument, { input: { profileId: PROFILES[REVOKED] as string } }, asRouter);
  expect(revoked.errors).toBeUndefined();

  hr = await startHrSubgraph(new Map(PROFILES.map((id, i) => [id, `Worker ${i}`])));
  sessions = await startRecordingProxy(gw.url);
  supergraphSdl = composeSupergraph({ hr: hr.url, workerSessions: sessions.url });
});
afterAll(async () => {
  await sessions?.stop();
  await hr?.stop();
  await gw?.close();
});

/** The `session` of each alias, null where the router gave none. */
function sessionsOf(response: GraphQLResponse<Team>): Array<Record<string, unknown> | null> {
  return ALIASES.map((alias) => response.data?.[alias]?.session ?? null);
}

/** Each error as "CODE path", sorted, so routers that order errors differently compare equal. */
function codesAndPaths(response: GraphQLResponse<unknown>): string[] {
  return (response.errors ?? []).map((e) => `${String(e.extensions?.code)} ${(e.path ?? []).join(".")}`).sort();
}

describe.each([
  { router: "@apollo/gateway", start: startApolloGatewayRouter },
  { router: "@graphql-hive/gateway", start: startHiveGatewayRouter },
])("through $router, configured with examples/routers", ({ start }) => {
  let router: Running;

  beforeAll(async () => {
    router = await start(supergraphSdl, ROUTER_SECRET);
  });
  afterAll(() => router?.stop());

  it("gives an admin every session, the revoked one REVOKED", async () => {
    const response = await gql<Team, unknown>(router.url, TEAM, undefined, { token: admin });
    expect(response.errors).toBeUndefined();
    const date = expect.stringMatching(/^\d{4}-\d\d-\d\dT/);
    expect(sessionsOf(response)).toEqual([
      { status: "ACTIVE" },
      { status: "ACTIVE", profileId: PROFILES[1] },
      { status: "ACTIVE", createdBy: "admin-1" },
      { status: "ACTIVE", createdAt: date },
      { status: "ACTIVE", expiresAt: date },
      { status: "REVOKED", revokedAt: date, revokedBy: "admin-1" },
      { status: "ACTIVE", profileId: PROFILES[6], createdBy: "admin-1" },
      { status: "ACTIVE", createdAt: date, expiresAt: date },
    ]);
    expect(ALIASES.map((alias) => response.data?.[alias]?.name)).toEqual(PROFILES.map((_, i) => `Worker ${i}`));
  });

  it("gives a worker its own session, and null with FORBIDDEN at the path of every other", async () => {
    const response = await gql<Team, unknown>(router.url, TEAM, undefined, { token: await aWorkerToken(PROFILES[OWN] as string) });
    expect(sessionsOf(response)).toEqual(ALIASES.map((_, i) => (i === OWN ? { status: "ACTIVE", createdAt: expect.any(String) } : null)));
    expect(codesAndPaths(response)).toEqual(ALIASES.filter((_, i) => i !== OWN).map((alias) => `FORBIDDEN ${alias}.session`));
  });

  it("gives an anonymous caller the HR fields but no session, and only UNAUTHENTICATED errors", async () => {
    const response = await gql<Team, unknown>(router.url, TEAM);
    expect(sessionsOf(response)).toEqual(ALIASES.map(() => null));
    expect(ALIASES.map((alias) => response.data?.[alias]?.name)).toEqual(PROFILES.map((_, i) => `Worker ${i}`));
    expect(codes(response).length).toBeGreaterThan(0);
    expect(new Set(codes(response))).toEqual(new Set(["UNAUTHENTICATED"]));
  });

  it("sends the caller's Authorization to both subgraphs and the router secret to this one only", async () => {
    sessions.clear();
    hr.received.length = 0;
    await gql<Team, unknown>(router.url, TEAM, undefined, { token: admin });
    expect(sessions.requests.length).toBeGreaterThan(0);
    for (const { headers, status } of sessions.requests) {
      expect(headers.authorization).toBe(`Bearer ${admin}`);
      expect(headers["router-authorization"]).toBe(ROUTER_SECRET);
      expect(status).toBe(200);
    }
    expect(hr.received.length).toBeGreaterThan(0);
    for (const headers of hr.received) {
      expect(headers.authorization).toBe(`Bearer ${admin}`);
      expect(headers["router-authorization"]).toBeUndefined();
    }
  });

  it("is refused with 401 by this subgraph when it holds another router secret", async () => {
    const impostor = await start(supergraphSdl, "not-the-router-secret-0123456789");
    try {
      sessions.clear();
      const response = await gql<Team, unknown>(impostor.url, TEAM, undefined, { token: admin });
      expect(sessionsOf(response)).toEqual(ALIASES.map(() => null));
      expect(response.errors?.length).toBeGreaterThan(0);
      expect(sessions.requests.length).toBeGreaterThan(0);
      expect(sessions.requests.map((r) => r.status)).toEqual(sessions.requests.map(() => 401));
    } finally {
      await impostor.stop();
    }
  });
});

describe("@graphql-hive/gateway's merged entity fetch", () => {
  let router: Running;

  beforeAll(async () => {
    router = await startHiveGatewayRouter(supergraphSdl, ROUTER_SECRET);
  });
  afterAll(() => router?.stop());

  it("reaches this subgraph as one request with _v0__entities … _v7__entities, and is answered", async () => {
    sessions.clear();
    const response = await gql<Team, unknown>(router.url, TEAM, undefined, { token: admin });
    expect(response.errors).toBeUndefined();
    expect(sessions.requests).toHaveLength(1);
    const [merged] = sessions.requests;
    expect(merged?.status).toBe(200);
    expect([...(merged?.body.query ?? "").matchAll(/(_v\d+__entities)\s*:\s*_entities\b/g)].map((m) => m[1])).toEqual(
      ALIASES.map((_, i) => `_v${i}__entities`),
    );
    expect(ALIASES.map((_, i) => merged?.body.variables?.[`_v${i}_representations`])).toEqual(
      PROFILES.map((profileId) => [{ __typename: "Worker", profileId }]),
    );
  });
});

describe("the Apollo Router configuration (no router binary here, so it is not run)", () => {
  const yaml = readFileSync(new URL("../../examples/routers/apollo-router.yaml", import.meta.url), "utf8");

  it("is shown in the README as it is in examples/routers/apollo-router.yaml", () => {
    const indented = yaml.replace(/^(?=.)/gm, "  ");
    expect(readFileSync(new URL("../../README.md", import.meta.url), "utf8")).toContain(`  \`\`\`yaml\n${indented}  \`\`\`\n`);
  });

  it("sends the router secret to the subgraph under the name it is composed with, from ROUTER_SECRET", () => {
    expect(yaml).toContain(`\n    ${WORKER_SESSIONS_SUBGRAPH}:\n      request:\n        - insert:\n            name: router-authorization\n`);
    expect(yaml).toContain('value: "${env.ROUTER_SECRET}"');
  });
});

/**
 * Lists, not single workers: each `workers` field of the HR subgraph becomes one `_entities` fetch
 * of every worker. Hive merges them into one request, so this subgraph sees many aliased
 * `_entities` fields at once; the entity cost (representations × guarded fields) must let a plan of
 * up to 24 lists through, through either router.
 */
describe.each([
  { router: "@apollo/gateway", start: startApolloGatewayRouter },
  { router: "@graphql-hive/gateway", start: startHiveGatewayRouter },
])("lists of workers through $router", ({ start }) => {
  let router: Running;

  beforeAll(async () => {
    router = await start(supergraphSdl, ROUTER_SECRET);
  });
  afterAll(() => router?.stop());

  it.each([6, 24])("answers %i lists, each selecting an aliased session differently, with every session", async (lists) => {
    const fields = ["status", "profileId", "createdBy", "createdAt", "expiresAt", "revokedBy"];
    // A client alias below the list travels into the subgraph's fetch: one nested alias per list.
    const query = `query Lists {\n${Array.from({ length: lists }, (_, i) => `  l${i}: workers { profileId session: session { status ${fields[i % fields.length]} } }`).join("\n")}\n}`;
    sessions.clear();
    const response = await gql<Record<string, Array<{ profileId: string; session: { status: string } | null }>>, unknown>(router.url, query, undefined, {
      token: admin,
    });
    expect(response.errors).toBeUndefined();
    for (let i = 0; i < lists; i += 1) {
      expect(response.data?.[`l${i}`]?.map((worker) => worker.session?.status)).toEqual(PROFILES.map((_, p) => (p === REVOKED ? "REVOKED" : "ACTIVE")));
    }
    expect(sessions.requests.every((request) => request.status === 200)).toBe(true);
  });
});
