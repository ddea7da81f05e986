import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import cors from "cors";
import type { Logger } from "pino";
import { routerSecretCheck } from "../auth/router-secret.js";

/** What every request carries once the HTTP layer has given it an id. */
export interface RequestScope {
  readonly requestId: string;
  /** The request's logger, bound to its id, made on first use (most requests never log). */
  readonly log: Logger;
}

export type ScopedRequest = IncomingMessage & RequestScope;
export type ScopedHandler = (req: ScopedRequest, res: ServerResponse) => Promise<void>;

export interface RequestListenerOptions {
  logger: Logger;
  /** Browser origins admitted by CORS on `/graphql`. */
  corsOrigins: readonly string[];
  /** When set, `/graphql` answers only requests that carry it in `Router-Authorization`. */
  routerSecret?: string;
  /** Serves `/graphql`. */
  graphql: ScopedHandler;
  /** Serves every other path (health, readiness, metrics, 404). */
  ops: (req: ScopedRequest, res: ServerResponse, path: string) => Promise<void>;
}

/** An incoming `x-request-id` is reused only when it is this safe; otherwise a fresh id is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const CORS_ALLOWED_HEADERS = [
  "authorization",
  "content-type",
  "x-request-id",
  "apollo-require-preflight",
  "x-apollo-operation-name",
  "apollographql-client-name",
  "apollographql-client-version",
];

function sendGraphQLError(res: ServerResponse, status: number, message: string, code: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json; charset=utf-8");
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

/** The gateway's HTTP server, before any listener is attached. */
export function createHttpServer(): Server {
  return createServer();
}

/**
 * The one request listener: every request gets its id (echoed in `x-request-id`) and a lazy
 * logger first; `/graphql` then passes the router secret (when set) and CORS before GraphQL runs;
 * every other path goes to the operations routes. A failure outside GraphQL is logged and
 * answered with a generic 500, never with its detail.
 */
export function gatewayRequestListener(options: RequestListenerOptions): RequestListener {
  const { logger } = options;
  const routerSecretOk = options.routerSecret === undefined ? undefined : routerSecretCheck(options.routerSecret);
  const corsHandler = cors({
    origin: [...options.corsOrigins],
    methods: ["GET", "POST", "OPTIONS"],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: ["x-request-id"],
    maxAge: 600,
  });

  return (incoming: IncomingMessage, res: ServerResponse) => {
    const given = incoming.headers["x-request-id"];
    const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    // A child logger costs a redaction pass over its bindings; most requests never log, so the
    // child is made on first use.
    let log: Logger | undefined;
    const requestLog = () => (log ??= logger.child({ requestId }));
    Object.defineProperty(incoming, "log", { get: requestLog, configurable: true });
    Object.assign(incoming, { requestId });
    const req = incoming as ScopedRequest;
    res.setHeader("x-request-id", requestId);

    const failed = (error: unknown) => {
      requestLog().error({ err: error }, "HTTP request failed");
      if (!res.headersSent) sendGraphQLError(res, 500, "Internal server error", "INTERNAL_SERVER_ERROR");
      else res.destroy();
    };
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    if (path !== "/graphql") {
      options.ops(req, res, path).catch(failed);
      return;
    }
    if (routerSecretOk !== undefined && !routerSecretOk(req.headers["router-authorization"])) {
      requestLog().warn("refused a request without the router secret");
      sendGraphQLError(res, 401, "This subgraph only answers the supergraph router", "UNAUTHENTICATED");
      return;
    }
    corsHandler(req, res, (corsError?: unknown) => {
      if (corsError !== undefined) return failed(corsError);
      options.graphql(req, res).catch(failed);
    });
  };
}
