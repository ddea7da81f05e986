import type { IncomingMessage, ServerResponse } from "node:http";
import { HeaderMap, type ApolloServer, type BaseContext } from "@apollo/server";
import { BodyTooLargeError, readBoundedBody } from "../base/bounded-body.js";

export interface GraphQLHandlerOptions<TContext extends BaseContext> {
  /** Bodies above this many bytes are refused with 413 before they are read in full. */
  maxBodyBytes: number;
  /** Builds the request's context (caller verification, loaders). */
  context(req: IncomingMessage): Promise<TContext>;
}

/** A GraphQL-shaped error body for failures before GraphQL runs. */
function refuse(res: ServerResponse, status: number, message: string, code = "BAD_REQUEST"): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = status;
  res.setHeader("content-type", "application/json; charset=utf-8");
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const mediaType = contentType.split(";", 1)[0]?.trim().toLowerCase();
  return mediaType === "application/json" || mediaType === "application/graphql-response+json";
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
        return refuse(res, 413, "request body too large");
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
          return refuse(res, 413, "request body too large");
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
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(", ") : value);
    }
    const url = req.url ?? "";
    const queryAt = url.indexOf("?");
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method, headers, search: queryAt === -1 ? "" : url.slice(queryAt), body },
      context: () => options.context(req),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === "complete") {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };
}
