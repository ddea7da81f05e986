import type { IncomingMessage, ServerResponse } from "node:http";
import { HeaderMap, type ApolloServer, type BaseContext } from "@apollo/server";
import { BodyTooLargeError, readBoundedBody } from "../base/bounded-body.js";
import { UNTRUSTED_DOCUMENT, type TrustedDocuments } from "./trusted-documents.js";

export interface GraphQLHandlerOptions<TContext extends BaseContext> {
  /** Bodies above this many bytes are refused with 413 before they are read in full. */
  maxBodyBytes: number;
  /** Builds the request's context (caller verification, loaders). */
  context(req: IncomingMessage): Promise<TContext>;
  /**
   * `TRUSTED_DOCUMENTS`: when set, a client request runs only a document the manifest lists
   * (README: Trusted documents); the check runs before Apollo parses anything.
   */
  trustedDocuments?: TrustedDocuments;
  /**
   * True for a request the supergraph router sent (`ROUTER_SECRET`): its query plans are not held to
   * the manifest, and only it may ask for Apollo's inline trace (`apollo-federation-include-trace`,
   * dropped from every other request before Apollo reads it).
   */
  fromRouter?(req: IncomingMessage): boolean;
  /** Told of each request refused as UNTRUSTED_DOCUMENT, with the message its client got (no document text). */
  onUntrusted?(req: IncomingMessage, message: string): void;
}

/** The request header a router sends (`ftv1`) to get Apollo's inline trace in `extensions.ftv1`. */
const FEDERATED_TRACE_HEADER = "apollo-federation-include-trace";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `extensions` without Apollo's `persistedQuery` (Apollo Server's own APQ is off), or undefined when nothing else is left. */
function withoutPersistedQuery(extensions: unknown): unknown {
  if (!isRecord(extensions) || !("persistedQuery" in extensions)) return extensions;
  const { persistedQuery: _persisted, ...rest } = extensions;
  return Object.keys(rest).length === 0 ? undefined : rest;
}

/** A JSON search parameter as Apollo reads it, or the raw text when it is not JSON (Apollo then refuses it). */
function jsonParam(raw: string | null): unknown {
  if (raw === null) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

type TrustedOutcome = { kind: "pass"; body: unknown; search: string } | { kind: "refused"; message: string };

/**
 * Holds a client request to the trusted documents: the admitted document's text replaces what the
 * request named (`documentId`, `extensions.persistedQuery`), in the body or the GET form's search,
 * so that Apollo runs exactly the manifest's text. A POST without a JSON body, or a method other
 * than GET and POST, passes through untouched: Apollo refuses it and runs nothing.
 */
function holdToTrusted(trusted: TrustedDocuments, method: string, body: unknown, search: string): TrustedOutcome {
  if (method === "POST") {
    // No JSON body at all: Apollo refuses it (content type, CSRF) and runs nothing. Any other
    // non-object (a batch, a string) is refused here, deny by default.
    if (body === undefined) return { kind: "pass", body, search };
    if (!isRecord(body)) return { kind: "refused", message: "This gateway runs only trusted documents (TRUSTED_DOCUMENTS): send one JSON object with a documentId from the manifest" };
    const decision = trusted.decide({ query: body.query, documentId: body.documentId, extensions: body.extensions });
    if (decision.kind === "refused") return decision;
    const { documentId: _id, extensions, ...rest } = body;
    const kept = withoutPersistedQuery(extensions);
    return { kind: "pass", body: { ...rest, query: decision.query, ...(kept === undefined ? {} : { extensions: kept }) }, search };
  }
  if (method !== "GET") return { kind: "pass", body, search };
  const params = new URLSearchParams(search);
  const decision = trusted.decide({ query: params.get("query") ?? undefined, documentId: params.get("documentId") ?? undefined, extensions: jsonParam(params.get("extensions")) });
  if (decision.kind === "refused") return decision;
  params.delete("documentId");
  params.set("query", decision.query);
  const kept = withoutPersistedQuery(jsonParam(params.get("extensions")));
  if (kept === undefined) params.delete("extensions");
  else params.set("extensions", typeof kept === "string" ? kept : JSON.stringify(kept));
  return { kind: "pass", body, search: `?${params.toString()}` };
}

/** A GraphQL-shaped error body for failures before GraphQL runs. */
function refuse(res: ServerResponse, status: number, message: string, code = "BAD_REQUEST", mediaType = "application/json"): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = status;
  res.setHeader("content-type", `${mediaType}; charset=utf-8`);
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

/** The 413's message: the limit, its value and its setting, as every limit's refusal says them (graphql/limits.ts). */
function bodyTooLarge(maxBodyBytes: number): string {
  return `Over the body size limit: the request body has more than ${maxBodyBytes} bytes; HTTP_MAX_BODY_BYTES allows ${maxBodyBytes}`;
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const mediaType = contentType.split(";", 1)[0]?.trim().toLowerCase();
  return mediaType === "application/json" || mediaType === "application/graphql-response+json";
}

function isHtml(contentType: string | undefined): boolean {
  return contentType?.split(";", 1)[0]?.trim().toLowerCase() === "text/html";
}

/**
 * Takes back the CORS headers the request listener set before GraphQL ran. The explorer page (the
 * HTML answer to a browser navigating to `GET /graphql`) is for that browser only: no other origin
 * may read it, so it carries no `access-control-*` header in any mode. JSON answers keep theirs.
 */
function withoutCors(res: ServerResponse): void {
  for (const name of res.getHeaderNames()) if (name.startsWith("access-control-")) res.removeHeader(name);
}

/**
 * Serves Apollo Server on a plain `node:http` request: what an integration package does (body,
 * headers, search, response), minus a web framework's router and middleware chain on the hottest
 * path. Apollo still applies CSRF prevention, batching rules, method checks and content
 * negotiation. Bodies are JSON only, identity-encoded, and at most `maxBodyBytes`.
 */
export function createGraphQLHandler<TContext extends BaseContext>(
  apollo: ApolloServer<TContext>,
  options: GraphQLHandlerOptions<TContext>,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  apollo.assertStarted("createGraphQLHandler()");
  return async (req, res) => {
    const method = (req.method ?? "GET").toUpperCase();
    let body: unknown;
    if (method === "POST") {
      const declared = Number(req.headers["content-length"]);
      if (Number.isFinite(declared) && declared > options.maxBodyBytes) {
        // Say so at once; close the connection rather than read what we refuse.
        res.setHeader("connection", "close");
        return refuse(res, 413, bodyTooLarge(options.maxBodyBytes));
      }
      const encoding = req.headers["content-encoding"];
      if (encoding !== undefined && encoding.toLowerCase() !== "identity") {
        return refuse(res, 415, "compressed request bodies are not accepted");
      }
      let text: string;
      try {
        text = (await readBoundedBody(req, options.maxBodyBytes)).toString("utf8");
      } catch (error) {
        if (error instanceof BodyTooLargeError) {
          // Drain the rest unread so that the answer can be written; the connection closes after it.
          req.resume();
          res.setHeader("connection", "close");
          return refuse(res, 413, bodyTooLarge(options.maxBodyBytes));
        }
        return refuse(res, 400, "the request body could not be read");
      }
      if (isJson(req.headers["content-type"])) {
        try {
          body = text === "" ? undefined : JSON.parse(text);
        } catch {
          return refuse(res, 400, "malformed JSON in the request body");
        }
      }
    }

    const headers = new HeaderMap();
    // With ROUTER_SECRET, only the router may ask for Apollo's inline trace (timings and paths).
    const mayTrace = options.fromRouter === undefined || options.fromRouter(req);
    for (const [key, value] of Object.entries(req.headers)) {
      if (value === undefined || (!mayTrace && key === FEDERATED_TRACE_HEADER)) continue;
      headers.set(key, Array.isArray(value) ? value.join(", ") : value);
    }
    const url = req.url ?? "";
    const queryAt = url.indexOf("?");
    let search = queryAt === -1 ? "" : url.slice(queryAt);
    const trusted = options.trustedDocuments;
    if (trusted !== undefined && method !== "OPTIONS" && options.fromRouter?.(req) !== true) {
      const outcome = holdToTrusted(trusted, method, body, search);
      if (outcome.kind === "refused") {
        options.onUntrusted?.(req, outcome.message);
        // GraphQL over HTTP: a client that accepts application/graphql-response+json (Apollo Client
        // 4 does) reads a 4xx in that type as a GraphQL error rather than a transport failure.
        const accept = req.headers.accept ?? "";
        return refuse(res, 400, outcome.message, UNTRUSTED_DOCUMENT, accept.includes("application/graphql-response+json") ? "application/graphql-response+json" : "application/json");
      }
      ({ body, search } = outcome);
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method, headers, search, body },
      context: () => options.context(req),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    if (isHtml(response.headers.get("content-type"))) withoutCors(res);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === "complete") {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };
}
