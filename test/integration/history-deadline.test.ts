/**
 * History reads within the request's deadline: a gateway on a port in front of the Deel sandbox,
 * over a ledger whose history reads never answer (a store that stopped answering). Every way of
 * reading the history (`workerSessionHistory`, `Worker.sessionHistory` through `_entities`,
 * `RevocationJob.events`) is answered by `DEEL_TIMEOUT_MS` with the store's UPSTREAM_UNAVAILABLE,
 * never left hanging.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryLedger } from "../../src/sessions/create-store.js";
import type { SessionStore } from "../../src/sessions/store.js";
import { RevocationJobEventsDocument, RevokeWorkerSessionsDocument, WorkerSessionHistoryDocument } from "../generated/operations.js";
import { anAdminToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type TestGateway } from "../support/gateway.js";

const ENTITIES = `query Entities($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on Worker { profileId sessionHistory(first: 5) { edges { node { action } } } } }
}`;

describe("history reads when the store does not answer", () => {
  let gw: TestGateway;
  let admin: string;
  let profile: string;
  let hung = 0;

  beforeAll(async () => {
    const ledger = memoryLedger();
    // History reads never answer; everything else does.
    const store: SessionStore = Object.assign(Object.create(ledger) as SessionStore, {
      readHistory: () => {
        hung += 1;
        return new Promise<never>(() => undefined);
      },
    });
    gw = await startTestGateway({ env: { DEEL_TIMEOUT_MS: "400" }, overrides: { store } });
    admin = await anAdminToken();
    profile = gw.sandbox.profiles[0] as string;
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("answers workerSessionHistory with UPSTREAM_UNAVAILABLE by the deadline", async () => {
    const response = await gql(gw.url, WorkerSessionHistoryDocument, { profileId: profile, first: 5 }, { token: admin });
    expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(response.errors?.[0]?.message).toBe("The session ledger is unavailable; try again shortly");
    expect(hung).toBeGreaterThan(0);
  });

  it("answers Worker.sessionHistory through _entities with UPSTREAM_UNAVAILABLE by the deadline", async () => {
    const response = await gql(gw.url, ENTITIES, { representations: [{ __typename: "Worker", profileId: profile }] }, { token: admin });
    expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
  });

  it("answers RevocationJob.events with UPSTREAM_UNAVAILABLE by the deadline", async () => {
    const job = await gql(gw.url, RevokeWorkerSessionsDocument, { input: { profileIds: [profile] } }, { token: admin });
    expect(job.errors).toBeUndefined();
    const id = job.data?.revokeWorkerSessions.id as string;
    const response = await gql(gw.url, RevocationJobEventsDocument, { id, first: 5 }, { token: admin });
    expect(codes(response)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    expect(response.errors?.[0]?.path).toEqual(["revocationJob", "events"]);
  });
});
