import { readFileSync } from "node:fs";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { execute, isObjectType, parse } from "graphql";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { CallerQuota } from "../../src/auth/caller-quota.js";
import { applyEdge } from "../../src/graphql/edge.js";
import { permissionRuleNames } from "../../src/graphql/permissions.js";
import { SCHEMA_FILE } from "../../src/graphql/emit-schema.js";
import type { GatewayContext } from "../../src/graphql/context.js";

/** The real subgraph SDL plus fields the permission map does not name, behind the edge pipeline. */
const schema = applyEdge(
  buildSubgraphSchema({
    typeDefs: parse(`${readFileSync(SCHEMA_FILE, "utf8")}
      extend type Query { unlisted: String }
      extend type WorkerSession { internalNote: String }
      type Secret { value: String }
      extend type Query { secret: Secret }`),
    resolvers: {
      Query: {
        unlisted: () => "leaked",
        secret: () => ({ value: "leaked" }),
        workerSession: () => ({ profileId: "x", status: "ACTIVE", createdAt: new Date(), expiresAt: new Date(), createdBy: "a", internalNote: "kept" }),
      },
    },
  }),
);

function context(scopes: string[]): GatewayContext {
  return {
    requestId: "r",
    log: pino({ level: "silent" }),
    auth: { kind: "verified", caller: { sub: "s", scopes: new Set(scopes), profileIds: new Set(), expiresAt: 4_000_000_000 } },
    sessions: undefined as never,
    quota: new CallerQuota(0),
    loaders: undefined as never,
  };
}

describe("the permission map", () => {
  it("denies a root field it does not name, and a type it does not name", async () => {
    const result = await execute({ schema, document: parse("{ unlisted secret { value } }"), contextValue: context(["worker_sessions:read"]) });
    expect(result.data).toEqual({ unlisted: null, secret: null });
    expect(result.errors?.map((e) => e.extensions.code)).toEqual(["FORBIDDEN", "FORBIDDEN"]);
  });

  it("lets the named fields of a session through once the guarded parent allowed it, and denies a field it does not name", async () => {
    const admin = context(["worker_sessions:read", "worker_sessions:all_profiles"]);
    const document = parse(`{ workerSession(profileId: "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50") { createdBy internalNote } }`);
    const result = await execute({ schema, document, contextValue: admin });
    expect(result.data).toEqual({ workerSession: { createdBy: "a", internalNote: null } });
    expect(result.errors?.map((e) => [e.path, e.extensions.code])).toEqual([[["workerSession", "internalNote"], "FORBIDDEN"]]);
    const denied = await execute({ schema, document: parse(`{ workerSession(profileId: "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50") { createdBy } }`), contextValue: context(["worker_sessions:all_profiles"]) });
    expect(denied.data).toEqual({ workerSession: null });
    expect(denied.errors?.map((e) => e.extensions.code)).toEqual(["FORBIDDEN"]);
  });

  it("names every field of every object type of the real subgraph: none falls to the deny fallback by accident", () => {
    const real = buildSubgraphSchema({ typeDefs: parse(readFileSync(SCHEMA_FILE, "utf8")) });
    const named = permissionRuleNames();
    const missing: string[] = [];
    for (const type of Object.values(real.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith("__")) continue;
      for (const field of Object.keys(type.getFields())) if (!named.has(`${type.name}.${field}`)) missing.push(`${type.name}.${field}`);
    }
    expect(missing).toEqual([]);
  });

  it("fails at start-up when a Mutation field has no audit action", () => {
    const build = () =>
      applyEdge(buildSubgraphSchema({ typeDefs: parse(`${readFileSync(SCHEMA_FILE, "utf8")}\n      extend type Mutation { forgetWorker(profileId: ID!): Boolean }`) }));
    expect(build).toThrow(/audit action .*missing: Mutation\.forgetWorker/);
  });
});
