import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApolloClient, gql as apolloGql, HttpLink, InMemoryCache, type DocumentNode } from "@apollo/client";
import { CombinedGraphQLErrors } from "@apollo/client/errors";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { generate, type CodegenConfig } from "@graphql-codegen/cli";
import { addTypenameSelectionDocumentTransform } from "@graphql-codegen/client-preset";
import { Kind, parse, type OperationDefinitionNode } from "graphql";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import clientPreset from "../../examples/codegen/client-preset.js";
import { startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";
import { anAdminToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";
import { codes, type GraphQLResponse } from "../support/gateway.js";
import { runGatewayProcess, startGatewayProcess, type GatewayProcess } from "../support/process.js";

/**
 * Trusted documents (README: Trusted documents), proved with the real tools: the manifest is the one
 * GraphQL Code Generator's client preset writes for test/operations, the gateway is the built
 * program in production, and the client is Apollo Client 4 with its persisted-queries link.
 */

const ROUTER_SECRET = "router-secret-for-trusted-documents";

let dir: string;
let manifestPath: string;
/** The manifest as the client preset wrote it: `sha256:<hex>` → document text. */
let manifest: Record<string, string>;
/** Operation name → manifest id. */
const idOf = new Map<string, string>();
let sandbox: DeelSandbox;
let gateway: GatewayProcess;
let admin: string;

/** The production environment the built program needs, pointed at the sandbox, plus `extra`. */
function productionEnv(extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: "0",
    DEEL_API_URL: sandbox.url,
    DEEL_API_TOKEN: sandbox.orgToken,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    SESSION_STORE_URL: "memory:",
    ...extra,
  };
}

/** Runs the client preset (the README's example config) with persisted documents into `out`. */
async function generateManifest(out: string): Promise<string> {
  const [output] = Object.values(clientPreset.generates) as [Record<string, unknown>];
  const config: CodegenConfig = {
    ...clientPreset,
    documents: ["test/operations/*.graphql"],
    silent: true,
    generates: {
      [`${out}/`]: {
        ...output,
        presetConfig: { persistedDocuments: true },
        // Apollo Client's cache adds __typename to what it sends; so must the manifest's documents.
        documentTransforms: [addTypenameSelectionDocumentTransform],
      },
    },
  };
  await generate(config, true);
  return join(out, "persisted-documents.json");
}

/** A document as the client preset generated it (graphql.ts), `__meta__.hash` included. */
function generatedDocument(operationName: string): DocumentNode {
  const source = readFileSync(join(dir, "gql", "graphql.ts"), "utf8");
  const match = new RegExp(`export const ${operationName}Document = (\\{.*\\}) as unknown as DocumentNode`).exec(source);
  if (match === null) throw new Error(`graphql.ts has no ${operationName}Document`);
  return JSON.parse(match[1]!) as DocumentNode;
}

/** A POST to the gateway with a raw body, as a client that speaks the protocol by hand. */
async function post<TData = unknown>(body: unknown, headers: Record<string, string> = {}): Promise<GraphQLResponse<TData> & { status: number }> {
  const response = await request(gateway.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${admin}`, ...headers },
    body: JSON.stringify(body),
  });
  const raw = await response.body.text();
  return { ...(JSON.parse(raw) as GraphQLResponse<TData>), status: response.statusCode, raw };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "wsg-trusted-"));
  manifestPath = await generateManifest(join(dir, "gql"));
  manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as Record<string, string>;
  for (const [id, text] of Object.entries(manifest)) {
    const operation = parse(text).definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    if (operation?.name !== undefined) idOf.set(operation.name.value, id);
  }
  sandbox = await startDeelSandbox({ rateLimitRps: 0 });
  admin = await anAdminToken();
  gateway = await startGatewayProcess(productionEnv({ TRUSTED_DOCUMENTS: manifestPath, ROUTER_SECRET, ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS: "true" }));
}, 60_000);

afterAll(async () => {
  await gateway?.stop("SIGTERM");
  await sandbox?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the client preset's manifest", () => {
  it("names every operation of test/operations by sha256:<hex of its text>", () => {
    expect([...idOf.keys()].sort()).toEqual(expect.arrayContaining(["CreateWorkerSession", "RevokeWorkerSession", "WorkerSession"]));
    for (const [id, text] of Object.entries(manifest)) {
      expect(id).toBe(`sha256:${createHash("sha256").update(text).digest("hex")}`);
    }
  });
});

describe("a gateway started with TRUSTED_DOCUMENTS and ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS in production", () => {
  it("runs a listed document by its documentId, as the manifest writes it or as bare hex", async () => {
    const [profileId] = sandbox.profiles as [string];
    const created = await post<{ createWorkerSession: { session: { status: string } } }>({ documentId: idOf.get("CreateWorkerSession"), variables: { input: { profileId } } });
    expect(created.status).toBe(200);
    expect(created.errors).toBeUndefined();
    expect(created.data?.createWorkerSession.session.status).toBe("ACTIVE");
    const bare = idOf.get("WorkerSession")!.replace("sha256:", "");
    const read = await post<{ workerSession: { status: string } }>({ documentId: bare, variables: { profileId } });
    expect(read.errors).toBeUndefined();
    expect(read.data?.workerSession.status).toBe("ACTIVE");
  });

  it("runs a listed document by documentId in the GET form", async () => {
    const [profileId] = sandbox.profiles as [string];
    const search = new URLSearchParams({ documentId: idOf.get("WorkerSession")!, variables: JSON.stringify({ profileId }) });
    const response = await request(`${gateway.url}?${search.toString()}`, { headers: { authorization: `Bearer ${admin}`, "apollo-require-preflight": "true" } });
    const body = (await response.body.json()) as GraphQLResponse<{ workerSession: { profileId: string } }>;
    expect(response.statusCode).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data?.workerSession.profileId).toBe(profileId);
  });

  it("runs the manifest's exact text sent alone, and refuses any other text with 400 UNTRUSTED_DOCUMENT before it runs", async () => {
    const [, profileId] = sandbox.profiles as [string, string];
    const exact = await post({ query: manifest[idOf.get("WorkerSession")!], variables: { profileId } });
    expect(exact.errors).toBeUndefined();
    const before = sandbox.requests.length;
    const unlisted = await post({ query: `mutation { createWorkerSession(input: { profileId: "${profileId}" }) { token } }` });
    expect(unlisted.status).toBe(400);
    expect(codes(unlisted)).toEqual(["UNTRUSTED_DOCUMENT"]);
    expect(unlisted.errors?.[0]?.message).toMatch(/only trusted documents \(TRUSTED_DOCUMENTS\).*send its documentId/);
    expect(sandbox.requests.length).toBe(before);
    await gateway.waitFor(/"code":"UNTRUSTED_DOCUMENT".*only trusted documents/);
    expect(gateway.output()).not.toContain(`createWorkerSession(input: { profileId: "${profileId}" })`);
    // A listed text with one space more is another document.
    const altered = await post({ query: `${manifest[idOf.get("WorkerSession")!]} `, variables: { profileId } });
    expect(codes(altered)).toEqual(["UNTRUSTED_DOCUMENT"]);
    // Not even a syntax error is parsed: the refusal comes first.
    expect(codes(await post({ query: "{ this is not graphql" }))).toEqual(["UNTRUSTED_DOCUMENT"]);
  });

  it("refuses an unknown id, a malformed one, and a listed id sent with another document's text", async () => {
    const unknown = await post({ documentId: `sha256:${"0".repeat(64)}` });
    expect(unknown.status).toBe(400);
    expect(codes(unknown)).toEqual(["UNTRUSTED_DOCUMENT"]);
    expect(unknown.errors?.[0]?.message).toBe(
      `The document sha256:${"0".repeat(64)} is not one of this gateway's trusted documents (TRUSTED_DOCUMENTS); send an id from the manifest your client was built with`,
    );
    const apq = await post({ extensions: { persistedQuery: { version: 1, sha256Hash: "f".repeat(64) } } });
    expect(codes(apq)).toEqual(["UNTRUSTED_DOCUMENT"]);
    const malformed = await post({ documentId: "<script>" });
    expect(codes(malformed)).toEqual(["UNTRUSTED_DOCUMENT"]);
    expect(malformed.raw).not.toContain("<script>");
    const mismatched = await post({ documentId: idOf.get("WorkerSession"), query: "{ __typename }" });
    expect(codes(mismatched)).toEqual(["UNTRUSTED_DOCUMENT"]);
    expect(mismatched.errors?.[0]?.message).toMatch(/is not that trusted document's text/);
    expect(codes(await post({ variables: {} }))).toEqual(["UNTRUSTED_DOCUMENT"]);
    // A batch is no way around it, whatever its entries name.
    expect(codes(await post([{ documentId: idOf.get("WorkerSession") }, { query: "{ __typename }" }]))).toEqual(["UNTRUSTED_DOCUMENT"]);
  });

  it("lets the router (ROUTER_SECRET) send any query plan, and still refuses a wrong secret", async () => {
    const [profileId] = sandbox.profiles as [string];
    const plan = `query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Worker { session { status expiresAt } } } }`;
    const routed = await post<{ _entities: Array<{ session: { status: string } | null }> }>(
      { query: plan, variables: { representations: [{ __typename: "Worker", profileId }] } },
      { "router-authorization": ROUTER_SECRET },
    );
    expect(routed.status).toBe(200);
    expect(routed.errors).toBeUndefined();
    expect(routed.data?._entities[0]?.session?.status).toBe("ACTIVE");
    const sdl = await post<{ _service: { sdl: string } }>({ query: "{ _service { sdl } }" }, { "router-authorization": ROUTER_SECRET });
    expect(sdl.data?._service.sdl).toContain("type WorkerSession");
    // Without the header the same plan is a client's, and not a trusted document.
    expect(codes(await post({ query: plan, variables: { representations: [] } }))).toEqual(["UNTRUSTED_DOCUMENT"]);
    const wrong = await post({ query: plan, variables: { representations: [] } }, { "router-authorization": "not-the-router-secret" });
    expect(wrong.status).toBe(401);
    expect(codes(wrong)).toEqual(["UNAUTHENTICATED"]);
  });
});

describe("ROUTER_SECRET with TRUSTED_DOCUMENTS, without ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS", () => {
  let routerOnly: GatewayProcess;
  beforeAll(async () => {
    routerOnly = await startGatewayProcess(productionEnv({ TRUSTED_DOCUMENTS: manifestPath, ROUTER_SECRET }));
  }, 30_000);
  afterAll(() => routerOnly?.stop("SIGTERM"));

  /** A POST to the router-only gateway, as `post` sends it. */
  async function postTo<TData = unknown>(body: unknown, headers: Record<string, string> = {}) {
    const response = await request(routerOnly.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${admin}`, ...headers },
      body: JSON.stringify(body),
    });
    const raw = await response.body.text();
    return { ...(JSON.parse(raw) as GraphQLResponse<TData>), status: response.statusCode, raw };
  }

  it("stays router-only: a direct client is refused with 401 even for a trusted document, and nothing reaches Deel", async () => {
    const [profileId] = sandbox.profiles as [string];
    const before = sandbox.requests.length;
    const byId = await postTo({ documentId: idOf.get("CreateWorkerSession"), variables: { input: { profileId } } });
    expect(byId.status).toBe(401);
    expect(codes(byId)).toEqual(["UNAUTHENTICATED"]);
    const byText = await postTo({ query: manifest[idOf.get("WorkerSession")!], variables: { profileId } });
    expect(byText.status).toBe(401);
    const search = new URLSearchParams({ documentId: idOf.get("WorkerSession")!, variables: JSON.stringify({ profileId }) });
    const byGet = await request(`${routerOnly.url}?${search.toString()}`, { headers: { authorization: `Bearer ${admin}`, "apollo-require-preflight": "true" } });
    await byGet.body.dump();
    expect(byGet.statusCode).toBe(401);
    expect(sandbox.requests.length).toBe(before);
  });

  it("still answers the router, with any query plan", async () => {
    const sdl = await postTo<{ _service: { sdl: string } }>({ query: "{ _service { sdl } }" }, { "router-authorization": ROUTER_SECRET });
    expect(sdl.status).toBe(200);
    expect(sdl.data?._service.sdl).toContain("type WorkerSession");
  });
});

describe("Apollo Client 4 with its persisted-queries link", () => {
  const SESSION = apolloGql`
    query WorkerSession($profileId: ID!) {
      workerSession(profileId: $profileId) { id profileId status }
    }
  `;

  /** A client whose link sends the manifest's id for each operation (by name), and the requests it sent. */
  function aClient(link: Parameters<typeof createPersistedQueryLink>[0]) {
    const sent: Array<{ method: string; body: Record<string, unknown> | undefined; search: string }> = [];
    const recording: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : input);
      sent.push({ method: init?.method ?? "GET", body: typeof init?.body === "string" ? (JSON.parse(init.body) as Record<string, unknown>) : undefined, search: url.search });
      return fetch(input, init);
    };
    const client = new ApolloClient({
      link: createPersistedQueryLink(link).concat(new HttpLink({ uri: gateway.url, fetch: recording, headers: { authorization: `Bearer ${admin}` } })),
      cache: new InMemoryCache(),
    });
    return { client, sent };
  }

  /** The manifest's id for an operation, found by its name, without the `sha256:` prefix as Apollo's protocol sends it. */
  const manifestHash = (document: DocumentNode): string => {
    const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const id = idOf.get(operation?.name?.value ?? "");
    if (id === undefined) throw new Error(`no manifest entry for ${operation?.name?.value}`);
    return id.replace("sha256:", "");
  };

  it("runs the client preset's own documents, a mutation (POST) and a query (GET), by the id they carry, never sending their text", async () => {
    const [, , profileId] = sandbox.profiles as [string, string, string];
    // The README's link: the id the client preset puts on each document (`__meta__.hash`).
    const { client, sent } = aClient({
      generateHash: (document) => ((document as { __meta__?: { hash?: string } }).__meta__?.hash ?? "").replace(/^sha256:/, ""),
      useGETForHashedQueries: true,
    });
    try {
      const created = await client.mutate({ mutation: generatedDocument("CreateWorkerSession"), variables: { input: { profileId } } });
      expect((created.data as { createWorkerSession: { session: { status: string } } }).createWorkerSession.session.status).toBe("ACTIVE");
      const read = await client.query({ query: generatedDocument("WorkerSession"), variables: { profileId } });
      expect((read.data as { workerSession: { status: string } }).workerSession).toMatchObject({ id: profileId, status: "ACTIVE" });
      expect(sent.map((r) => r.method)).toEqual(["POST", "GET"]);
      expect(sent[0]?.body?.query).toBeUndefined();
      expect(sent[0]?.body?.extensions).toMatchObject({ persistedQuery: { version: 1, sha256Hash: idOf.get("CreateWorkerSession")!.replace("sha256:", "") } });
      expect(new URLSearchParams(sent[1]?.search).get("query")).toBeNull();
    } finally {
      client.stop();
    }
  });

  it("runs a hand-written document whose id the link finds in the manifest by operation name", async () => {
    const [, , profileId] = sandbox.profiles as [string, string, string];
    const { client, sent } = aClient({ generateHash: manifestHash });
    try {
      const read = await client.query({ query: SESSION, variables: { profileId } });
      expect((read.data as { workerSession: { status: string } }).workerSession).toMatchObject({ id: profileId, status: "ACTIVE" });
      expect(sent).toHaveLength(1);
      expect(sent[0]?.body?.query).toBeUndefined();
    } finally {
      client.stop();
    }
  });

  it("is refused with UNTRUSTED_DOCUMENT for a document the manifest lacks, with the fallback to full text off or on", async () => {
    const unlisted = apolloGql`
      query Unlisted($profileId: ID!) {
        workerSession(profileId: $profileId) { status }
      }
    `;
    const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
    const [profileId] = sandbox.profiles as [string];
    // Apollo's own hash of its printed text: the manifest does not know it, and the code is not
    // PERSISTED_QUERY_NOT_FOUND, so the link does not fall back to sending the text.
    const strict = aClient({ sha256, retry: () => false });
    try {
      const error = await strict.client.query({ query: unlisted, variables: { profileId } }).then(() => undefined, (e: unknown) => e);
      expect(CombinedGraphQLErrors.is(error)).toBe(true);
      expect((error as CombinedGraphQLErrors).errors.map((e) => e.extensions?.code)).toEqual(["UNTRUSTED_DOCUMENT"]);
      expect(strict.sent).toHaveLength(1);
      expect(strict.sent[0]?.body?.query).toBeUndefined();
    } finally {
      strict.client.stop();
    }
    // A link told to retry with the full text is refused again: a text is no way around the manifest.
    const retrying = aClient({ sha256, retry: () => true });
    try {
      const error = await retrying.client.query({ query: unlisted, variables: { profileId } }).then(() => undefined, (e: unknown) => e);
      expect((error as CombinedGraphQLErrors).errors.map((e) => e.extensions?.code)).toEqual(["UNTRUSTED_DOCUMENT"]);
      expect(retrying.sent).toHaveLength(2);
      expect(retrying.sent[1]?.body?.query).toMatch(/^query Unlisted/);
    } finally {
      retrying.client.stop();
    }
  });
});

describe("start-up refuses a manifest it cannot trust, naming TRUSTED_DOCUMENTS and never the Deel token", () => {
  const cases: Array<[string, () => string, RegExp]> = [
    ["a missing file", () => join(dir, "missing.json"), /TRUSTED_DOCUMENTS must name a readable file, but ".*missing\.json" could not be read \(ENOENT\)/],
    ["malformed JSON", () => writeCase("malformed.json", "{ not json"), /TRUSTED_DOCUMENTS \(.*malformed\.json\) is not valid JSON/],
    ["an array", () => writeCase("array.json", "[]"), /must be a JSON object of id → document/],
    ["an empty manifest", () => writeCase("empty.json", "{}"), /lists no documents/],
    ["a sha1 id", () => writeCase("sha1.json", JSON.stringify({ ["a".repeat(40)]: "{ __typename }" })), /entry 1's id is not a SHA-256 id/],
    [
      "an entry whose id does not match its text",
      () => writeCase("tampered.json", JSON.stringify({ ...manifest, [Object.keys(manifest)[0]!]: "mutation { revokeWorkerSessions(input: { reason: \"x\" }) { id } }" })),
      /entry 1's id sha256:[0-9a-f]{64} does not match its document, whose SHA-256 is sha256:[0-9a-f]{64}; regenerate the manifest/,
    ],
  ];
  function writeCase(name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  }
  it.each(cases)("%s", async (_name, path, message) => {
    const { code, output } = await runGatewayProcess(productionEnv({ TRUSTED_DOCUMENTS: path() }));
    expect(code).toBe(78);
    expect(output).toMatch(message);
    expect(output).not.toContain(sandbox.orgToken);
    expect(output).not.toContain("revokeWorkerSessions");
  });
});

describe("start-up refuses ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS=true unless it can hold direct clients to the manifest", () => {
  /** A manifest of `texts`, each under its SHA-256 id, as the client preset writes one. */
  function manifestOf(name: string, ...texts: string[]): string {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(Object.fromEntries(texts.map((text) => [`sha256:${createHash("sha256").update(text).digest("hex")}`, text]))));
    return path;
  }
  const listed = () => manifest[idOf.get("WorkerSession")!]!;
  const optIn = { ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS: "true" };
  const cases: Array<[string, () => Record<string, string>, RegExp]> = [
    ["without ROUTER_SECRET", () => ({ ...optIn, TRUSTED_DOCUMENTS: manifestPath }), /ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS=true .*needs both ROUTER_SECRET and TRUSTED_DOCUMENTS, but ROUTER_SECRET is not set/],
    ["without TRUSTED_DOCUMENTS", () => ({ ...optIn, ROUTER_SECRET }), /needs both ROUTER_SECRET and TRUSTED_DOCUMENTS, but TRUSTED_DOCUMENTS is not set/],
    ["without either", () => optIn, /but ROUTER_SECRET and TRUSTED_DOCUMENTS are not set/],
    ["with a value that is not a switch", () => ({ ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS: "yes", ROUTER_SECRET, TRUSTED_DOCUMENTS: manifestPath }), /ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS must be 1 or 0 \(true or false\), but got "yes"/],
    [
      "with a manifest document that does not parse",
      () => ({ ...optIn, ROUTER_SECRET, TRUSTED_DOCUMENTS: manifestOf("unparsable.json", listed(), "query { revokeWorkerSessions(") }),
      /TRUSTED_DOCUMENTS: entry 2 \(sha256:[0-9a-f]{64}\) does not parse as GraphQL at line 1, column \d+/,
    ],
    [
      "with a manifest document that selects _entities",
      () => ({
        ...optIn,
        ROUTER_SECRET,
        TRUSTED_DOCUMENTS: manifestOf("entities.json", listed(), "query ($r: [_Any!]!) { _entities(representations: $r) { ... on Worker { session { token: id } } } }"),
      }),
      /TRUSTED_DOCUMENTS: entry 2 \(sha256:[0-9a-f]{64}\) selects _entities, which only the router \(ROUTER_SECRET\) may ask for/,
    ],
    [
      "with a manifest document that selects _service inside a fragment",
      () => ({ ...optIn, ROUTER_SECRET, TRUSTED_DOCUMENTS: manifestOf("service.json", "query Sdl { ...Plumbing } fragment Plumbing on Query { ... on Query { _service { sdl } } }") }),
      /TRUSTED_DOCUMENTS: entry 1 \(sha256:[0-9a-f]{64}\) selects _service, which only the router/,
    ],
  ];
  it.each(cases)("%s", async (_name, env, message) => {
    const { code, output } = await runGatewayProcess(productionEnv(env()));
    expect(code).toBe(78);
    expect(output).toMatch(message);
    expect(output).not.toContain(sandbox.orgToken);
    expect(output).not.toContain(ROUTER_SECRET);
    expect(output).not.toContain("revokeWorkerSessions");
  });

  it("starts with the client preset's manifest, which selects neither", async () => {
    const started = await startGatewayProcess(productionEnv({ ...optIn, ROUTER_SECRET, TRUSTED_DOCUMENTS: manifestPath }));
    expect(await started.stop("SIGTERM")).toBe(0);
  });
});
