import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TrustedDocuments, TrustedDocumentsError } from "../../src/http/trusted-documents.js";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const READ = "query WorkerSession($profileId: ID!) { workerSession(profileId: $profileId) { status } }";
const CREATE = "mutation Create($input: CreateWorkerSessionInput!) { createWorkerSession(input: $input) { token } }";

/** A manifest as the client preset writes it: `sha256:<hex>` → text. */
function aManifest(texts: readonly string[] = [READ, CREATE]): TrustedDocuments {
  return TrustedDocuments.parse(JSON.stringify(Object.fromEntries(texts.map((text) => [`sha256:${sha256(text)}`, text]))), "manifest");
}
const request = (fields: { query?: unknown; documentId?: unknown; extensions?: unknown }) => ({ query: undefined, documentId: undefined, extensions: undefined, ...fields });

describe("TrustedDocuments.decide", () => {
  const docs = aManifest();

  it("admits a listed id in either form, by documentId or Apollo's persistedQuery hash, with the manifest's text", () => {
    expect(docs.decide(request({ documentId: `sha256:${sha256(READ)}` }))).toEqual({ kind: "admitted", query: READ });
    expect(docs.decide(request({ documentId: sha256(READ).toUpperCase() }))).toEqual({ kind: "admitted", query: READ });
    expect(docs.decide(request({ extensions: { persistedQuery: { version: 1, sha256Hash: sha256(CREATE) } } }))).toEqual({ kind: "admitted", query: CREATE });
  });

  it("admits an id with its own text, and a listed text alone", () => {
    expect(docs.decide(request({ documentId: sha256(READ), query: READ }))).toEqual({ kind: "admitted", query: READ });
    expect(docs.decide(request({ query: CREATE }))).toEqual({ kind: "admitted", query: CREATE });
  });

  it("refuses an unknown id, a non-sha256 id, an id with another text, an unlisted text, and nothing at all", () => {
    for (const refused of [
      request({ documentId: "0".repeat(64) }),
      request({ documentId: "a".repeat(40) }),
      request({ documentId: sha256(READ), query: CREATE }),
      request({ query: `${READ} ` }),
      request({ query: 42 }),
      request({ extensions: { persistedQuery: { sha256Hash: 7 } } }),
      request({}),
    ]) {
      expect(docs.decide(refused).kind).toBe("refused");
    }
  });

  it("never echoes a request's id unless it is a sha256 id", () => {
    const decision = docs.decide(request({ documentId: "<img src=x>" }));
    expect(decision).toMatchObject({ kind: "refused" });
    expect(JSON.stringify(decision)).not.toContain("<img");
  });
});

describe("TrustedDocuments.parse", () => {
  it("accepts bare hex ids too, and counts the documents", () => {
    expect(TrustedDocuments.parse(JSON.stringify({ [sha256(READ)]: READ }), "m").size).toBe(1);
  });

  it.each([
    ["not JSON", "{", /m is not valid JSON/],
    ["an array", "[]", /must be a JSON object/],
    ["empty", "{}", /lists no documents/],
    ["a sha1 id", JSON.stringify({ ["b".repeat(40)]: READ }), /entry 1's id is not a SHA-256 id/],
    ["a blank text", JSON.stringify({ [sha256(" ")]: " " }), /entry 1 .* must be a document's text/],
    ["a text that is not a string", JSON.stringify({ [sha256(READ)]: 1 }), /must be a document's text/],
    ["a tampered text", JSON.stringify({ [`sha256:${sha256(READ)}`]: CREATE }), /entry 1's id sha256:[0-9a-f]{64} does not match its document, whose SHA-256 is sha256:[0-9a-f]{64}/],
  ])("refuses %s, without quoting a document", (_name, json, message) => {
    const error = (() => {
      try {
        TrustedDocuments.parse(json, "m");
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(TrustedDocumentsError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("createWorkerSession");
  });
});
