import { ApolloClient, gql, HttpLink, InMemoryCache, type TypedDocumentNode } from "@apollo/client";
import { loadDevMessages, loadErrorMessages } from "@apollo/client/dev";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anAdminToken } from "../support/callers.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";

/**
 * The gateway as a client team's Apollo Client (4.x, default InMemoryCache) sees it: `WorkerSession`
 * carries `id`, so the cache keeps one WorkerSession per worker and a mutation's answer updates
 * every query that shows that worker.
 */

interface Session {
  __typename?: "WorkerSession";
  id: string;
  profileId: string;
  status: "ACTIVE" | "EXPIRED" | "REVOKED";
  expiresAt: string;
  revokedAt: string | null;
}

const SESSION: TypedDocumentNode<{ workerSession: Session | null }, { profileId: string }> = gql`
  query Session($profileId: ID!) {
    workerSession(profileId: $profileId) {
      id
      profileId
      status
      expiresAt
      revokedAt
    }
  }
`;

const CREATE: TypedDocumentNode<{ createWorkerSession: { token: string; session: Session } }, { profileId: string }> = gql`
  mutation CreateSession($profileId: ID!) {
    createWorkerSession(input: { profileId: $profileId }) {
      token
      session {
        id
        profileId
        status
        expiresAt
        revokedAt
      }
    }
  }
`;

/** Selects only what a revoke changes: the cache merges it into the WorkerSession it already holds. */
const REVOKE: TypedDocumentNode<
  { revokeWorkerSession: { session: Pick<Session, "id" | "status" | "revokedAt"> | null } },
  { profileId: string }
> = gql`
  mutation RevokeSession($profileId: ID!) {
    revokeWorkerSession(input: { profileId: $profileId }) {
      session {
        id
        status
        revokedAt
      }
    }
  }
`;

let gw: TestGateway;
let admin: string;
let profiles: string[];

beforeAll(async () => {
  loadDevMessages();
  loadErrorMessages();
  gw = await startTestGateway();
  admin = await anAdminToken();
  profiles = [...gw.sandbox.profiles];
});
afterAll(() => gw.close());

/** An Apollo Client on the gateway, and the operation names of the requests it actually sent. */
function aClient(cache = new InMemoryCache()) {
  const sent: string[] = [];
  const countingFetch: typeof fetch = (input, init) => {
    // HttpLink posts a JSON string body.
    sent.push((JSON.parse(init?.body as string) as { operationName: string }).operationName);
    return fetch(input, init);
  };
  const client = new ApolloClient({
    link: new HttpLink({ uri: gw.url, fetch: countingFetch, headers: { authorization: `Bearer ${admin}` } }),
    cache,
  });
  return { client, sent };
}

describe("Apollo Client's default cache", () => {
  it("shows a revoked session as REVOKED from the cache alone, without refetching the query", async () => {
    const profileId = profiles[0]!;
    const { client, sent } = aClient();
    try {
      await client.mutate({ mutation: CREATE, variables: { profileId } });
      const before = await client.query({ query: SESSION, variables: { profileId } });
      expect(before.data?.workerSession).toMatchObject({ id: profileId, status: "ACTIVE", revokedAt: null });

      const revoked = await client.mutate({ mutation: REVOKE, variables: { profileId } });
      expect(revoked.data?.revokeWorkerSession.session).toMatchObject({ id: profileId, status: "REVOKED" });

      const after = await client.query({ query: SESSION, variables: { profileId }, fetchPolicy: "cache-only" });
      expect(after.data?.workerSession).toMatchObject({ id: profileId, status: "REVOKED", revokedAt: revoked.data?.revokeWorkerSession.session?.revokedAt });
      expect(sent).toEqual(["CreateSession", "Session", "RevokeSession"]);
      expect(client.cache.identify({ __typename: "WorkerSession", id: profileId })).toBe(`WorkerSession:${profileId}`);
    } finally {
      client.stop();
    }
  });

  it("keeps one WorkerSession per worker whatever letter case the caller used for the profile id", async () => {
    const profileId = profiles[1]!;
    const { client } = aClient();
    try {
      await client.mutate({ mutation: CREATE, variables: { profileId: profileId.toUpperCase() } });
      const upper = await client.query({ query: SESSION, variables: { profileId: profileId.toUpperCase() } });
      expect(upper.data?.workerSession).toMatchObject({ id: profileId, profileId, status: "ACTIVE" });

      await client.mutate({ mutation: REVOKE, variables: { profileId } });
      const after = await client.query({ query: SESSION, variables: { profileId: profileId.toUpperCase() }, fetchPolicy: "cache-only" });
      expect(after.data?.workerSession?.status).toBe("REVOKED");
    } finally {
      client.stop();
    }
  });
});

describe("Query.workerSession after a create", () => {
  /**
   * The cache of the README ("Using it from Apollo Client"): `workerSession(profileId: …)` reads the
   * WorkerSession of that worker when the query itself has not run yet.
   */
  function aCacheWithTheTypePolicy() {
    return new InMemoryCache({
      typePolicies: {
        Query: {
          fields: {
            workerSession: {
              read: (existing, { args, toReference }) =>
                existing ?? toReference({ __typename: "WorkerSession", id: String(args?.profileId).toLowerCase() }),
            },
          },
        },
      },
    });
  }

  it("without a type policy, finds nothing in the cache for a worker it has only created", async () => {
    const profileId = profiles[2]!;
    const { client, sent } = aClient();
    try {
      await client.mutate({ mutation: CREATE, variables: { profileId } });
      const read = await client.query({ query: SESSION, variables: { profileId }, fetchPolicy: "cache-only" });
      expect(read.data).toBeUndefined();
      expect(sent).toEqual(["CreateSession"]);
    } finally {
      client.stop();
    }
  });

  it("with the type policy, reads the created session from the cache with no request, by a profile id in any letter case", async () => {
    const profileId = profiles[3]!;
    const { client, sent } = aClient(aCacheWithTheTypePolicy());
    try {
      const created = await client.mutate({ mutation: CREATE, variables: { profileId } });
      const read = await client.query({ query: SESSION, variables: { profileId: profileId.toUpperCase() }, fetchPolicy: "cache-only" });
      expect(read.data?.workerSession).toEqual({ __typename: "WorkerSession", ...created.data?.createWorkerSession.session, status: "ACTIVE" });
      expect(sent).toEqual(["CreateSession"]);
    } finally {
      client.stop();
    }
  });

  it("with the type policy, still asks the gateway about a worker the cache holds no session for", async () => {
    const profileId = profiles[4]!;
    const { client, sent } = aClient(aCacheWithTheTypePolicy());
    try {
      expect((await client.query({ query: SESSION, variables: { profileId }, fetchPolicy: "cache-only" })).data).toBeUndefined();
      const read = await client.query({ query: SESSION, variables: { profileId } });
      expect(read.data).toEqual({ workerSession: null });
      expect(sent).toEqual(["Session"]);
    } finally {
      client.stop();
    }
  });
});
