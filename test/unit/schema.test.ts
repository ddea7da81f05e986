import { readFileSync } from "node:fs";
import { buildASTSchema, parse, type GraphQLNamedType, isObjectType, isInputObjectType, isEnumType } from "graphql";
import { describe, expect, it } from "vitest";
import { printGatewaySdl, SCHEMA_FILE } from "../../src/graphql/emit-schema.js";

describe("the committed subgraph SDL", () => {
  it("matches what the code builds (run `npm run schema:emit` after changing the schema)", async () => {
    expect(readFileSync(SCHEMA_FILE, "utf8")).toBe(await printGatewaySdl());
  });

  it("describes RevocationJob.events as what the job's revokes recorded: JOB_REVOKE, their refusals, and the INTENT_RESOLVED they ended", () => {
    const sdl = readFileSync(SCHEMA_FILE, "utf8").replace(/^extend schema[\s\S]*?\)\n/, "");
    const schema = buildASTSchema(parse(`directive @key(fields: String!) on OBJECT\n${sdl}`));
    const type = schema.getType("RevocationJob");
    const description = isObjectType(type) ? type.getFields().events?.description : undefined;
    expect(description).toMatch(/JOB_REVOKE/);
    expect(description).toMatch(/refusals/);
    expect(description).toMatch(/INTENT_RESOLVED/);
  });

  it("carries the federation @link and Worker's @key(fields: \"profileId\")", () => {
    const sdl = readFileSync(SCHEMA_FILE, "utf8");
    expect(sdl).toMatch(/@link\(url: "https:\/\/specs\.apollo\.dev\/federation\/v2\.\d+", import: \["@key"\]\)/);
    expect(sdl).toMatch(/type Worker\s+@key\(fields: "profileId"\)/);
  });

  it("names exactly the GraphQL contract, with a description on every type, field and argument", () => {
    const sdl = readFileSync(SCHEMA_FILE, "utf8").replace(/^extend schema[\s\S]*?\)\n/, "");
    const schema = buildASTSchema(parse(`directive @key(fields: String!) on OBJECT\n${sdl}`));
    const fields = (name: string) => {
      const type = schema.getType(name) as GraphQLNamedType;
      if (isObjectType(type) || isInputObjectType(type)) return Object.keys(type.getFields()).sort();
      if (isEnumType(type)) return type.getValues().map((v) => v.name).sort();
      return [];
    };
    expect(fields("Query")).toEqual(["revocationJob", "workerSession", "workerSessionHistory"]);
    expect(fields("Mutation")).toEqual(["createWorkerMagicLink", "createWorkerSession", "revokeWorkerSession", "revokeWorkerSessions"]);
    expect(fields("RevokeWorkerSessionsInput")).toEqual(["createdBy", "onlyActive", "profileIds"]);
    expect(fields("RevocationJob")).toEqual([
      "createdBy", "events", "failed", "failureReason", "finishedAt", "id", "onlyActive", "requestedBy", "revoked", "startedAt", "status", "total",
    ]);
    expect(fields("RevocationJobStatus")).toEqual(["DONE", "FAILED", "RUNNING"]);
    expect(String(schema.getMutationType()?.getFields().revokeWorkerSessions?.type)).toBe("RevocationJob!");
    expect(String(schema.getQueryType()?.getFields().revocationJob?.type)).toBe("RevocationJob");
    expect(fields("CreateWorkerMagicLinkInput")).toEqual(["idempotencyKey", "onSuccessRedirectUrl", "profileId", "redirectPath"]);
    expect(fields("CreateWorkerMagicLinkPayload")).toEqual(["expiresAt", "magicLink", "session"]);
    expect(fields("CreateWorkerSessionInput")).toEqual(["idempotencyKey", "profileId"]);
    expect(fields("CreateWorkerSessionPayload")).toEqual(["session", "token"]);
    expect(fields("RevokeWorkerSessionInput")).toEqual(["profileId"]);
    expect(fields("RevokeWorkerSessionPayload")).toEqual(["profileId", "revokedAt", "session"]);
    expect(fields("WorkerSession")).toEqual(["createdAt", "createdBy", "expiresAt", "id", "profileId", "revokedAt", "revokedBy", "status"]);
    expect(fields("WorkerSessionStatus")).toEqual(["ACTIVE", "EXPIRED", "REVOKED", "UNKNOWN"]);
    expect(fields("Worker")).toEqual(["profileId", "session", "sessionHistory"]);
    expect(fields("WorkerSessionEventConnection")).toEqual(["edges", "pageInfo"]);
    expect(fields("WorkerSessionEventEdge")).toEqual(["cursor", "node"]);
    expect(fields("WorkerSessionEventPageInfo")).toEqual(["endCursor", "hasNextPage"]);
    expect(fields("WorkerSessionEvent")).toEqual(["action", "actor", "at", "deelRequestId", "id", "jobId", "outcome", "profileId", "requestId"]);
    expect(fields("WorkerSessionEventAction")).toEqual([
      "INTENT_RESOLVED", "INTENT_UNKNOWN", "INTENT_WRITTEN", "JOB_REVOKE", "MAGIC_LINK", "MINT", "REPLAY", "REVOKE",
    ]);
    expect(String(schema.getQueryType()?.getFields().workerSessionHistory?.type)).toBe("WorkerSessionEventConnection!");
    expect(String(schema.getQueryType()?.getFields().workerSession?.type)).toBe("WorkerSession");
    expect(String(schema.getMutationType()?.getFields().createWorkerSession?.type)).toBe("CreateWorkerSessionPayload!");
    expect(String(schema.getMutationType()?.getFields().createWorkerMagicLink?.type)).toBe("CreateWorkerMagicLinkPayload!");
    expect(String((schema.getType("RevokeWorkerSessionPayload") as never as { getFields(): Record<string, { type: unknown }> }).getFields().revokedAt?.type)).toBe("DateTimeISO!");

    const undocumented: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith("__") || ["String", "Boolean", "ID", "Int", "Float"].includes(type.name)) continue;
      if (!type.description) undocumented.push(type.name);
      if (isObjectType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          if (!field.description) undocumented.push(`${type.name}.${field.name}`);
          for (const arg of "args" in field ? field.args : []) if (!arg.description) undocumented.push(`${type.name}.${field.name}(${arg.name})`);
        }
      }
    }
    expect(undocumented).toEqual([]);
  });
});
