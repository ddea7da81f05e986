/**
 * The one validator at the GraphQL edge (src/graphql/edge-input.ts) and the constructors of the
 * branded values it makes (src/base/). Malformed values are refused here, with the README's words;
 * nothing below the edge can be handed a raw string, so nothing there checks again.
 */
import type { GraphQLError } from "graphql";
import { describe, expect, it } from "vitest";
import { parseIdempotencyKey } from "../../src/base/idempotency-key.js";
import { isUuid, parseProfileId } from "../../src/base/profile-id.js";
import { parseRevocationJobFilters, parseRevocationJobId } from "../../src/base/revocation-job.js";
import type { GatewayContext } from "../../src/graphql/context.js";
import { INPUT_STEPS, workerEntity } from "../../src/graphql/edge-input.js";

const P1 = "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50";
/** Profile ids that must never reach a URL (they used to be fed to the Deel client itself). */
const BAD_IDS = ["../x", "%2e%2e%2f", "a?b=1", "", "not-a-uuid", `${P1}/../x`, ` ${P1}`, `${P1}#x`, `{${P1}}`, `urn:uuid:${P1}`];

const ctx = { magicLinkRedirectOrigins: ["https://app.example.com", "http://localhost:3000"] } as unknown as GatewayContext;
const step = (type: string, field: string) => {
  const found = INPUT_STEPS[type]?.[field];
  if (found === undefined) throw new Error(`no input step for ${type}.${field}`);
  return (args: unknown, parent: unknown = undefined) => found(args as never, parent, ctx);
};
const refusal = (outcome: unknown) => {
  const error = outcome as GraphQLError;
  return { code: error.extensions?.code, message: error.message };
};

describe("profile ids", () => {
  it("isUuid accepts any version, any case, and nothing else", () => {
    expect(isUuid("00000000-0000-0000-0000-000000000000")).toBe(true);
    expect(isUuid("6F1E2D3C-4B5A-1978-CA69-0B1C2D3E4F50")).toBe(true);
    expect(isUuid(P1)).toBe(true);
    expect(isUuid(`${P1}\n`)).toBe(false);
    expect(isUuid(P1.replace(/-/g, ""))).toBe(false);
    expect(isUuid("g1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50")).toBe(false);
  });

  it("is one profile however it is spelt: an upper-case UUID becomes the lower-case ProfileId", () => {
    expect(parseProfileId(P1.toUpperCase())).toEqual({ ok: true, value: P1 });
    expect(step("Query", "workerSession")({ profileId: P1.toUpperCase() })).toEqual({ profileId: P1 });
  });

  for (const id of BAD_IDS) {
    it(`refuses ${JSON.stringify(id)} as BAD_USER_INPUT on every field that takes a profile id`, () => {
      const expected = { code: "BAD_USER_INPUT", message: "profileId must be a UUID" };
      expect(parseProfileId(id)).toEqual({ ok: false, problem: "profileId must be a UUID" });
      expect(refusal(step("Query", "workerSession")({ profileId: id }))).toEqual(expected);
      expect(refusal(step("Mutation", "createWorkerSession")({ input: { profileId: id } }))).toEqual(expected);
      expect(refusal(step("Mutation", "revokeWorkerSession")({ input: { profileId: id } }))).toEqual(expected);
      expect(refusal(step("Mutation", "createWorkerMagicLink")({ input: { profileId: id, redirectPath: "/" } }))).toEqual(expected);
      expect(refusal(step("Worker", "session")({}, workerEntity({ profileId: id })))).toEqual(expected);
    });
  }

  it("parses an entity's key once, where the representation enters, and keeps the key as given", () => {
    const entity = workerEntity({ profileId: P1.toUpperCase() });
    expect(entity).toEqual({ profileId: P1.toUpperCase(), key: { ok: true, value: P1 } });
    expect(step("Worker", "session")({}, entity)).toEqual({ profileId: P1 });
  });
});

describe("idempotency keys", () => {
  it("takes 1 to 64 characters; absent or null is no key; the empty string is refused, not read as none", () => {
    const create = step("Mutation", "createWorkerSession");
    expect(create({ input: { profileId: P1, idempotencyKey: "k".repeat(64) } })).toEqual({ input: { profileId: P1, idempotencyKey: "k".repeat(64) } });
    expect(create({ input: { profileId: P1, idempotencyKey: null } })).toEqual({ input: { profileId: P1, idempotencyKey: undefined } });
    expect(create({ input: { profileId: P1 } })).toEqual({ input: { profileId: P1, idempotencyKey: undefined } });
    for (const key of ["", "k".repeat(65)]) {
      expect(parseIdempotencyKey(key)).toEqual({ ok: false, problem: "idempotencyKey must be 1 to 64 characters" });
      expect(refusal(create({ input: { profileId: P1, idempotencyKey: key } }))).toEqual({ code: "BAD_USER_INPUT", message: "idempotencyKey must be 1 to 64 characters" });
    }
  });

  it("checks the key before the profile id (the first problem is the one answered)", () => {
    expect(refusal(step("Mutation", "createWorkerSession")({ input: { profileId: "x", idempotencyKey: "" } })).message).toMatch(/^idempotencyKey/);
  });
});

describe("a magic link's target", () => {
  const magicLink = step("Mutation", "createWorkerMagicLink");

  it("is refused for a path that would leave Deel's app, before anything else happens", () => {
    for (const redirectPath of ["https://evil", "//evil", "//evil.com", "a", "/a\nb", "/..;/admin", "/x?next=http:evil.com", "/\uff0fevil.com"]) {
      const { code, message } = refusal(magicLink({ input: { profileId: P1, redirectPath } }));
      expect({ code, redirectPath }).toEqual({ code: "BAD_USER_INPUT", redirectPath });
      expect(message).toMatch(/^redirectPath must be a relative path/);
    }
  });

  it("is refused for an onSuccessRedirectUrl in plain http, or on another origin", () => {
    for (const onSuccessRedirectUrl of ["http://app.example.com/", "https://evil.test/", "javascript:alert(1)"]) {
      expect(refusal(magicLink({ input: { profileId: P1, redirectPath: "/x", onSuccessRedirectUrl } })).message).toMatch(/^onSuccessRedirectUrl must be/);
    }
  });

  it("carries the onSuccessRedirectUrl in its normalized form", () => {
    for (const onSuccessRedirectUrl of ["HTTPS://app.example.com/done", "https:app.example.com/done", "https:/app.example.com/done"]) {
      expect(magicLink({ input: { profileId: P1.toUpperCase(), redirectPath: "/x", onSuccessRedirectUrl, idempotencyKey: "k" } })).toEqual({
        input: { profileId: P1, idempotencyKey: "k", target: { redirectPath: "/x", onSuccessRedirectUrl: "https://app.example.com/done" } },
      });
    }
  });
});

describe("revocation jobs", () => {
  it("parses filters: at least one, createdBy 1–256 characters, profile ids all UUIDs (lower-cased, once each), at most 2,000", () => {
    const P2 = "a2b4c6d8-e0f2-4416-9a3c-5e7f9b1d3f57";
    expect(parseRevocationJobFilters({ profileIds: [P1, P1.toUpperCase(), P2] })).toEqual({ ok: true, value: { createdBy: null, profileIds: [P1, P2], onlyActive: true } });
    expect(parseRevocationJobFilters({ createdBy: "leaky", profileIds: [], onlyActive: false })).toEqual({ ok: true, value: { createdBy: "leaky", profileIds: [], onlyActive: false } });
    expect(parseRevocationJobFilters({})).toEqual({ ok: false, problem: "Give at least one filter: createdBy, or a non-empty profileIds" });
    expect(parseRevocationJobFilters({ profileIds: [] })).toEqual({ ok: false, problem: "Give at least one filter: createdBy, or a non-empty profileIds" });
    expect(parseRevocationJobFilters({ createdBy: "" })).toEqual({ ok: false, problem: "createdBy must be 1 to 256 characters" });
    expect(parseRevocationJobFilters({ createdBy: "x".repeat(257) })).toEqual({ ok: false, problem: "createdBy must be 1 to 256 characters" });
    expect(parseRevocationJobFilters({ profileIds: [P1, "../x"] })).toEqual({ ok: false, problem: "profileIds must all be UUIDs" });
    expect(parseRevocationJobFilters({ profileIds: Array.from({ length: 2001 }, () => P1) })).toEqual({ ok: false, problem: "profileIds may name at most 2000 profiles" });
  });

  it("parses a job id as a lower-case UUID", () => {
    expect(parseRevocationJobId(P1.toUpperCase())).toEqual({ ok: true, value: P1 });
    expect(refusal(step("Query", "revocationJob")({ id: "job-1" }))).toEqual({ code: "BAD_USER_INPUT", message: "id must be a revocation job id (a UUID)" });
  });
});
