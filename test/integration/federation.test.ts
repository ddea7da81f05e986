import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Scope } from "../../src/auth/caller.js";
import { createStorage } from "../../src/sessions/create-store.js";
import { Ledger } from "../../src/sessions/ledger.js";
import { CreateWorkerSessionDocument } from "../generated/operations.js";
import { aCallerToken, anAdminToken, aWorkerToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type TestGateway } from "../support/gateway.js";
import { composeSupergraph, startApolloGatewayRouter, startHrSubgraph, type Running } from "../support/supergraph.js";

/** A ledger that counts the calls made at the store interface. */
class CountingStore extends Ledger {
  gets = 0;
  batches: number[] = [];
  constructor() {
    super(createStorage({ kind: "memory" }), { retentionMs: null });
  }
  override get(profileId: string) {
    this.gets += 1;
    return super.get(profileId);
  }
  override getStates(profileIds: readonly string[]) {
    this.batches.push(profileIds.length);
    return super.getStates(profileIds);
  }
  reset() {
    this.gets = 0;
    this.batches = [];
  }
}

const ENTITIES = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Worker { profileId session { status } } } }`;
const workerRef = (profileId: string) => ({ __typename: "Worker", profileId });
const uuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;

let gw: TestGateway;
let store: CountingStore;
let admin: string;
let P1: string;
let P2: string;
let P3: string;

beforeAll(async () => {
  store = new CountingStore();
  gw = await startTestGateway({ overrides: { store: store } });
  admin = await anAdminToken();
  [P1, P2, P3] = gw.sandbox.profiles as [string, string, string];
  for (const profileId of [P1, P2]) {
    const created = await gql(gw.url, CreateWorkerSessionDocument, { input: { profileId } }, { token: admin });
    expect(created.errors).toBeUndefined();
  }
});
afterAll(() => gw.close());

describe("Worker entities through _entities", () => {
  it("reads the ledger once for 100 representations, in key order", async () => {
    const representations = [P1, ...Array.from({ length: 98 }, (_, i) => uuid(i)), P2].map(workerRef);
    store.reset();
    const response = await gql<{ _entities: Array<{ profileId: string; session: { status: string } | null }> }, unknown>(
      gw.url,
      ENTITIES,
      { r: representations },
      { token: admin },
    );
    expect(response.errors).toBeUndefined();
    expect(store.batches).toEqual([100]);
    expect(store.gets).toBe(0);
    const entities = response.data!._entities;
    expect(entities).toHaveLength(100);
    expect(entities.map((e) => e.profileId)).toEqual(representations.map((r) => r.profileId));
    expect(entities[0]?.session?.status).toBe("ACTIVE");
    expect(entities[99]?.session?.status).toBe("ACTIVE");
    expect(entities.slice(1, 99).every((e) => e.session === null)).toBe(true);
  });

  it("never returns a session to a caller without the read scope: null, and one FORBIDDEN for the field path that counts them", async () => {
    const noRead = await aCallerToken({ scopes: [Scope.create, Scope.allProfiles] });
    store.reset();
    const response = await gql<{ _entities: Array<{ session: unknown }> }, unknown>(gw.url, ENTITIES, { r: [workerRef(P1), workerRef(P2)] }, { token: noRead });
    expect(response.data?._entities.map((e) => e.session)).toEqual([null, null]);
    // Refusals are grouped per path shape: one error (at the first) names how many were refused.
    expect(response.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([["FORBIDDEN", ["_entities", 0, "session"]]]);
    expect(response.errors?.[0]?.message).toMatch(/refused for 2 entities at _entities\.\*\.session/);
    expect(store.batches).toEqual([]);
  });

  it("gives a profile-scoped caller its own session and FORBIDDEN for another's, in one request", async () => {
    const own = await aWorkerToken(P2);
    const response = await gql<{ _entities: Array<{ profileId: string; session: { status: string } | null }> }, unknown>(
      gw.url,
      ENTITIES,
      { r: [workerRef(P1), workerRef(P2)] },
      { token: own },
    );
    expect(response.data?._entities).toEqual([
      { profileId: P1, session: null },
      { profileId: P2, session: { status: "ACTIVE" } },
    ]);
    expect(response.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([["FORBIDDEN", ["_entities", 0, "session"]]]);
  });

  it("refuses an anonymous entity fetch and a malformed key", async () => {
    const anonymous = await gql(gw.url, ENTITIES, { r: [workerRef(P1)] });
    expect(codes(anonymous)).toEqual(["UNAUTHENTICATED"]);
    const malformed = await gql(gw.url, ENTITIES, { r: [workerRef("../x")] }, { token: admin });
    expect(codes(malformed)).toEqual(["BAD_USER_INPUT"]);
  });

  it("lets composition read _service without a caller", async () => {
    const response = await gql<{ _service: { sdl: string } }, unknown>(gw.url, "{ _service { sdl } }");
    expect(response.errors).toBeUndefined();
    expect(response.data?._service.sdl).toContain('@key(fields: "profileId")');
  });
});

describe("a supergraph of this subgraph and an HR subgraph, through @apollo/gateway", () => {
  let hr: Running;
  let router: Running;

  beforeAll(async () => {
    hr = await startHrSubgraph(new Map([P1, P2, P3].map((id, i) => [id, `Worker ${i + 1}`])));
    // Header propagation as examples/routers/apollo-gateway.ts does it (no router secret here).
    router = await startApolloGatewayRouter(composeSupergraph({ hr: hr.url, workerSessions: gw.url }));
  });
  afterAll(async () => {
    await router?.stop();
    await hr?.stop();
  });

  const QUERY = `{ workers { profileId name session { status } } }`;

  it("resolves every worker's session for an admin", async () => {
    const response = await gql<{ workers: Array<{ profileId: string; name: string; session: { status: string } | null }> }, unknown>(
      router.url,
      QUERY,
      undefined,
      { token: admin },
    );
    expect(response.errors).toBeUndefined();
    expect(response.data?.workers).toEqual([
      { profileId: P1, name: "Worker 1", session: { status: "ACTIVE" } },
      { profileId: P2, name: "Worker 2", session: { status: "ACTIVE" } },
      { profileId: P3, name: "Worker 3", session: null },
    ]);
  });

  it("shows a profile-scoped caller only its own session", async () => {
    const response = await gql<{ workers: Array<{ profileId: string; session: { status: string } | null }> }, unknown>(
      router.url,
      QUERY,
      undefined,
      { token: await aWorkerToken(P2) },
    );
    expect(response.data?.workers.map((w) => [w.profileId, w.session?.status ?? null])).toEqual([
      [P1, null],
      [P2, "ACTIVE"],
      [P3, null],
    ]);
    // One grouped refusal for the subgraph's fetch, at the first refused path, counting both.
    expect(response.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([["FORBIDDEN", ["workers", 0, "session"]]]);
    expect(response.errors?.[0]?.message).toMatch(/refused for 2 entities/);
  });

  it("gives an anonymous supergraph query no session at all", async () => {
    const response = await gql<{ workers: Array<{ session: unknown }> }, unknown>(router.url, QUERY);
    expect(response.data?.workers.every((w) => w.session === null)).toBe(true);
    expect(new Set(codes(response))).toEqual(new Set(["UNAUTHENTICATED"]));
  });
});
