import { Readable } from "node:stream";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anAdminToken, aCallerToken } from "../support/callers.js";
import { codes, gql, startTestGateway, type GraphQLResponse, type TestGateway } from "../support/gateway.js";

/**
 * Every limit's refusal says which limit, the value in force and the setting that changes it
 * (README: Errors, "Request limits"), over HTTP against a production gateway. One gateway runs the
 * defaults; another runs every limit set low, which proves each setting is the one that changes it.
 */

let defaults: TestGateway;
let low: TestGateway;
let admin: string;
let P1: string;

const LOW = {
  GRAPHQL_MAX_ALIASES: "2",
  GRAPHQL_MAX_DEPTH: "3",
  GRAPHQL_MAX_COST: "40",
  GRAPHQL_MAX_TOKENS: "120",
  GRAPHQL_MAX_DIRECTIVES: "3",
  HTTP_MAX_BODY_BYTES: "4096",
  MAX_ENTITY_REPRESENTATIONS: "10",
  MAX_ENTITY_COST: "15",
  CALLER_MUTATIONS_PER_MINUTE: "2",
};

beforeAll(async () => {
  [defaults, low] = await Promise.all([startTestGateway({ env: { NODE_ENV: "production" } }), startTestGateway({ env: { NODE_ENV: "production", ...LOW } })]);
  admin = await anAdminToken();
  [P1] = low.sandbox.profiles as [string];
});
afterAll(async () => {
  await Promise.all([defaults?.close(), low?.close()]);
});

const aliases = (n: number, profileId: string) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: workerSession(profileId: "${profileId}") { status }`).join(" ")} }`;
const workers = (count: number, profileId: string) => Array.from({ length: count }, () => ({ __typename: "Worker", profileId }));

/** The one error of a refused request: its HTTP status, code and message. */
function refusal(response: GraphQLResponse<unknown>) {
  expect(response.errors).toHaveLength(1);
  return { status: response.status, code: codes(response)[0], message: response.errors?.[0]?.message };
}

describe("limit refusals name the limit, its value and its setting", () => {
  it("six aliases (the default limit is 5): GRAPHQL_MAX_ALIASES, not 'Syntax Error: Query validation error.'", async () => {
    const [profileId] = defaults.sandbox.profiles as [string];
    expect(refusal(await gql(defaults.url, aliases(6, profileId), undefined, { token: admin }))).toEqual({
      status: 400,
      code: "GRAPHQL_VALIDATION_FAILED",
      message: "Over the alias limit: the operation has 6 aliases; GRAPHQL_MAX_ALIASES allows 5",
    });
    expect((await gql(defaults.url, aliases(5, profileId), undefined, { token: admin })).errors).toBeUndefined();
  });

  it("aliases, as GRAPHQL_MAX_ALIASES sets them", async () => {
    expect(refusal(await gql(low.url, aliases(3, P1), undefined, { token: admin }))).toEqual({
      status: 400,
      code: "GRAPHQL_VALIDATION_FAILED",
      message: "Over the alias limit: the operation has 3 aliases; GRAPHQL_MAX_ALIASES allows 2",
    });
    expect((await gql(low.url, aliases(2, P1), undefined, { token: admin })).errors).toBeUndefined();
  });

  it("depth: GRAPHQL_MAX_DEPTH", async () => {
    // nest(d) selects d + 1 levels of fields, which graphql-armor counts as depth d + 1.
    const nest = (depth: number): string => (depth === 0 ? "x" : `f { ${nest(depth - 1)} }`);
    const over = await gql(low.url, `{ ${nest(3)} }`, undefined, { token: admin });
    expect(over.status).toBe(400);
    expect(codes(over)).toContain("GRAPHQL_VALIDATION_FAILED");
    expect(over.errors?.map((e) => e.message)).toContain("Over the depth limit: the operation has 4 levels of nesting; GRAPHQL_MAX_DEPTH allows 3");
    const atLimit = await gql(low.url, `{ ${nest(2)} }`, undefined, { token: admin });
    expect(atLimit.errors?.map((e) => e.message).filter((m) => m.includes("GRAPHQL_MAX_DEPTH"))).toEqual([]);
  });

  it("cost: GRAPHQL_MAX_COST", async () => {
    const fields = (n: number) => `{ ${Array.from({ length: n }, () => "__typename").join(" ")} }`;
    expect(refusal(await gql(low.url, fields(41), undefined, { token: admin }))).toEqual({
      status: 400,
      code: "GRAPHQL_VALIDATION_FAILED",
      message: "Over the cost limit: the operation has 41 cost points; GRAPHQL_MAX_COST allows 40",
    });
    expect((await gql(low.url, fields(40), undefined, { token: admin })).errors).toBeUndefined();
  });

  it("directives: GRAPHQL_MAX_DIRECTIVES", async () => {
    const directives = (n: number) => `{ ${Array.from({ length: n }, () => "__typename @include(if: true)").join(" ")} }`;
    expect(refusal(await gql(low.url, directives(4), undefined, { token: admin }))).toEqual({
      status: 400,
      code: "GRAPHQL_VALIDATION_FAILED",
      message: "Over the directive limit: the operation has 4 directives; GRAPHQL_MAX_DIRECTIVES allows 3",
    });
    expect((await gql(low.url, directives(3), undefined, { token: admin })).errors).toBeUndefined();
  });

  it("tokens: GRAPHQL_MAX_TOKENS, as a parse failure with its location", async () => {
    const tokens = (n: number) => `{ _entities(representations: [${Array(n - 12).fill("1").join(" ")}]) { __typename } }`;
    const over = await gql(low.url, tokens(121), undefined, { token: admin });
    expect(refusal(over)).toEqual({
      status: 400,
      code: "GRAPHQL_PARSE_FAILED",
      message: "Syntax Error: Over the token limit: the document has more than 120 tokens; GRAPHQL_MAX_TOKENS allows 120",
    });
    expect(over.errors?.[0]).toHaveProperty("locations");
    expect(codes(await gql(low.url, tokens(120), undefined, { token: admin }))).not.toContain("GRAPHQL_PARSE_FAILED");
  });

  it("the request body: HTTP_MAX_BODY_BYTES, with 413, declared or streamed", async () => {
    const body = JSON.stringify({ query: "{ __typename }", variables: { pad: "x".repeat(5000) } });
    const expected = { errors: [{ message: "Over the body size limit: the request body has more than 4096 bytes; HTTP_MAX_BODY_BYTES allows 4096", extensions: { code: "BAD_REQUEST" } }] };
    const declared = await request(low.url, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(declared.statusCode).toBe(413);
    expect(await declared.body.json()).toEqual(expected);
    const streamed = await request(low.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: Readable.from([Buffer.from(body)]),
    });
    expect(streamed.statusCode).toBe(413);
    expect(await streamed.body.json()).toEqual(expected);
  });

  it("entity representations and cost: MAX_ENTITY_REPRESENTATIONS, MAX_ENTITY_COST", async () => {
    const fetch = (selections: string) => `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Worker { ${selections} } } }`;
    const reps = refusal(await gql(low.url, fetch("session { status }"), { r: workers(11, P1) }, { token: admin }));
    expect(reps).toMatchObject({ status: 400, code: "BAD_USER_INPUT" });
    expect(reps.message).toBe("An entity fetch may carry at most 10 representations in one request (this one carries 11); the limit is MAX_ENTITY_REPRESENTATIONS");
    const cost = refusal(await gql(low.url, fetch("session { status } s1: session { status }"), { r: workers(10, P1) }, { token: admin }));
    expect(cost).toMatchObject({ status: 400, code: "BAD_USER_INPUT" });
    expect(cost.message).toMatch(/^An entity fetch may cost at most 15 .*this one costs 20.*the limit is MAX_ENTITY_COST$/);
  });

  it("aliases inside a router's entity fetch: GRAPHQL_MAX_ALIASES; merged fetches: a fixed bound that says so", async () => {
    const nested = `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Worker { session { a0: status a1: status a2: status } } } }`;
    expect(refusal(await gql(low.url, nested, { r: workers(1, P1) }, { token: admin }))).toEqual({
      status: 400,
      code: "GRAPHQL_VALIDATION_FAILED",
      message: "Over the alias limit: an entity fetch has 3 aliases below one _entities field; GRAPHQL_MAX_ALIASES allows 2",
    });
    const [profileId] = defaults.sandbox.profiles as [string];
    const variables = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`r${i}`, workers(1, profileId)]));
    const fields = Array.from({ length: 25 }, (_, i) => `_v${i}__entities: _entities(representations: $r${i}) { __typename }`);
    const merged = `query (${Array.from({ length: 25 }, (_, i) => `$r${i}: [_Any!]!`).join(", ")}) { ${fields.join(" ")} }`;
    const refused = refusal(await gql(defaults.url, merged, variables, { token: admin }));
    expect(refused).toMatchObject({ status: 400, code: "GRAPHQL_VALIDATION_FAILED" });
    expect(refused.message).toMatch(/at most 24 _entities fields .*this one has 25 .*fixed.*GRAPHQL_MAX_TOKENS/);
  });

  it("the caller's mutation quota: CALLER_MUTATIONS_PER_MINUTE, with retryAfterSeconds", async () => {
    const caller = await aCallerToken({ sub: "quota-message-test" });
    const create = `mutation ($input: CreateWorkerSessionInput!) { createWorkerSession(input: $input) { token } }`;
    for (let i = 0; i < 2; i += 1) expect((await gql(low.url, create, { input: { profileId: P1 } }, { token: caller })).errors).toBeUndefined();
    const over = await gql(low.url, create, { input: { profileId: P1 } }, { token: caller });
    expect(codes(over)).toEqual(["RATE_LIMITED"]);
    expect(over.errors?.[0]?.message).toMatch(/^Over the caller mutation limit: this caller has sent its mutations for the minute; CALLER_MUTATIONS_PER_MINUTE allows 2 a minute; retry in \d+ s$/);
    expect(over.status).toBe(200);
    expect(over.errors?.[0]?.extensions?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });
});
