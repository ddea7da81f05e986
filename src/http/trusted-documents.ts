import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/**
 * Trusted documents (`TRUSTED_DOCUMENTS`, README: Trusted documents): the only operations a client
 * may run, listed in the manifest GraphQL Code Generator's client preset writes
 * (`presetConfig.persistedDocuments`: `persisted-documents.json`, a JSON object of id → document).
 *
 * The client preset names each document by `sha256:` and the hex SHA-256 of its printed text (its
 * default `hashAlgorithm`); Apollo Client's persisted-queries link sends a bare hex hash. Both forms
 * name the same entry here. The manifest is read and every id checked against its text once, at
 * start-up; a request is then decided by one map lookup, before Apollo parses or validates anything.
 * No graphql import: this runs before GraphQL does.
 */

/** The manifest cannot be used: unreadable, not JSON, not id → document, or an id that does not match its text. */
export class TrustedDocumentsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrustedDocumentsError";
  }
}

/** The error code of every refusal (README: Errors). */
export const UNTRUSTED_DOCUMENT = "UNTRUSTED_DOCUMENT";

/** What a request asked to run, as it sent it (body fields, or the GET form's parameters). */
export interface DocumentRequest {
  /** `query`: a full document text. */
  readonly query: unknown;
  /** `documentId` (GraphQL over HTTP, persisted documents appendix): `sha256:<hex>` or bare hex. */
  readonly documentId: unknown;
  /** `extensions`; Apollo's automatic persisted queries send `persistedQuery.sha256Hash` here. */
  readonly extensions: unknown;
}

export type TrustedDecision =
  /** Run `query`: the manifest's text for the id, or the text sent, which the manifest holds. */
  | { readonly kind: "admitted"; readonly query: string }
  | { readonly kind: "refused"; readonly message: string };

const SHA256_ID = /^(?:sha256:)?([0-9a-fA-F]{64})$/;

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** An id as a request or manifest gives it, lower-case hex, or undefined when it is not a SHA-256 id. */
function hexOf(id: string): string | undefined {
  return SHA256_ID.exec(id)?.[1]?.toLowerCase();
}

/** An id as it may be echoed in a message: a hash is not a secret, but a request's value may be anything. */
function shown(id: string): string {
  const hex = hexOf(id);
  return hex === undefined ? "(not a sha256 id)" : `sha256:${hex}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The hash a request names: `documentId`, or Apollo's `extensions.persistedQuery.sha256Hash`. */
function requestedId(request: DocumentRequest): string | undefined {
  if (typeof request.documentId === "string") return request.documentId;
  if (!isRecord(request.extensions)) return undefined;
  const persisted = request.extensions.persistedQuery;
  return isRecord(persisted) && typeof persisted.sha256Hash === "string" ? persisted.sha256Hash : undefined;
}

/** The trusted documents, loaded once: id (hex) → text, and the set of texts. */
export class TrustedDocuments {
  private readonly texts: ReadonlySet<string>;

  private constructor(private readonly byHash: ReadonlyMap<string, string>) {
    this.texts = new Set(byHash.values());
  }

  /** How many documents the manifest lists. */
  get size(): number {
    return this.byHash.size;
  }

  /** Every document with its id (`sha256:<hex>`), in the manifest's order: for checks at start-up. */
  documents(): Array<{ readonly id: string; readonly text: string }> {
    return [...this.byHash].map(([hex, text]) => ({ id: `sha256:${hex}`, text }));
  }

  /**
   * Reads a manifest's JSON text (`source` names it in messages). Refuses one that is not a
   * non-empty object of SHA-256 id → document text, or whose id does not match its text.
   * Messages name ids and positions, never a document's text.
   */
  static parse(json: string, source: string): TrustedDocuments {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      throw new TrustedDocumentsError(`${source} is not valid JSON; expected the client preset's persisted-documents.json (an object of id → document)`);
    }
    if (!isRecord(parsed)) throw new TrustedDocumentsError(`${source} must be a JSON object of id → document, as the client preset's persisted-documents.json is`);
    const entries = Object.entries(parsed);
    if (entries.length === 0) throw new TrustedDocumentsError(`${source} lists no documents: every client request would be refused`);
    const byHash = new Map<string, string>();
    entries.forEach(([id, text], index) => {
      const hex = hexOf(id);
      if (hex === undefined) {
        throw new TrustedDocumentsError(
          `${source}: entry ${index + 1}'s id is not a SHA-256 id ("sha256:" and 64 hex digits, or the 64 digits alone); generate the manifest with the client preset's default hashAlgorithm, sha256`,
        );
      }
      if (typeof text !== "string" || text.trim() === "") throw new TrustedDocumentsError(`${source}: entry ${index + 1} (sha256:${hex}) must be a document's text`);
      const actual = sha256Hex(text);
      if (actual !== hex) {
        throw new TrustedDocumentsError(`${source}: entry ${index + 1}'s id sha256:${hex} does not match its document, whose SHA-256 is sha256:${actual}; regenerate the manifest`);
      }
      byHash.set(hex, text);
    });
    return new TrustedDocuments(byHash);
  }

  /** Reads and checks the manifest at `path` (the `TRUSTED_DOCUMENTS` setting), once, at start-up. */
  static load(path: string, setting = "TRUSTED_DOCUMENTS"): TrustedDocuments {
    let json: string;
    try {
      json = readFileSync(path, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
      throw new TrustedDocumentsError(`${setting} must name a readable file, but "${path.slice(0, 200)}" could not be read (${code})`);
    }
    return TrustedDocuments.parse(json, `${setting} (${path.slice(0, 200)})`);
  }

  /**
   * Decides what a request may run:
   *  - an id alone (`documentId`, or Apollo's `persistedQuery.sha256Hash`) runs the manifest's text
   *    for it, or is refused when the manifest does not list it;
   *  - an id with a text runs only when the text is exactly the manifest's text for that id;
   *  - a text alone runs only when it is exactly one of the manifest's texts.
   */
  decide(request: DocumentRequest): TrustedDecision {
    const id = requestedId(request);
    const text = typeof request.query === "string" ? request.query : undefined;
    if (id !== undefined) {
      const hex = hexOf(id);
      const known = hex === undefined ? undefined : this.byHash.get(hex);
      if (known === undefined) {
        return { kind: "refused", message: `The document ${shown(id)} is not one of this gateway's trusted documents (TRUSTED_DOCUMENTS); send an id from the manifest your client was built with` };
      }
      if (text !== undefined && text !== known) {
        return { kind: "refused", message: `The query text sent with ${shown(id)} is not that trusted document's text (TRUSTED_DOCUMENTS); send the id alone` };
      }
      return { kind: "admitted", query: known };
    }
    if (text !== undefined && this.texts.has(text)) return { kind: "admitted", query: text };
    return {
      kind: "refused",
      message:
        text === undefined
          ? "This gateway runs only trusted documents (TRUSTED_DOCUMENTS): send a documentId (or Apollo's extensions.persistedQuery.sha256Hash) from the manifest"
          : "This gateway runs only trusted documents (TRUSTED_DOCUMENTS), and this query text is not one of them: send its documentId from the manifest instead",
    };
  }
}
