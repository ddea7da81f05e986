import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import cors from "cors";
import type { Logger } from "pino";
import { isLoopbackHost } from "../base/loopback.js";
import { JOB_REQUEST_ID_PREFIX } from "../base/revocation-job.js";
import { capConnectionsPerAddress } from "./address-cap.js";
import { EXPLORER_PREFIX, serveExplorerAsset } from "./explorer-assets.js";
import { routerSecretCheck } from "./router-secret.js";

/** Bounds on client connections, so that a slow or idle client cannot hold the server. */
export interface HttpSettings {
  /** Whole request, headers and body, must arrive within this (`HTTP_REQUEST_TIMEOUT_MS`). */
  readonly requestTimeoutMs: number;
  /** Idle keep-alive connections close after this (`HTTP_KEEP_ALIVE_TIMEOUT_MS`). */
  readonly keepAliveTimeoutMs: number;
  /** Open connections past this are dropped at once (`HTTP_MAX_CONNECTIONS`). */
  readonly maxConnections: number;
  /** Open connections from one client address past this are dropped at once (`HTTP_MAX_CONNECTIONS_PER_ADDRESS`). */
  readonly maxConnectionsPerAddress: number;
}

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
  /**
   * Local mode: also admit every loopback origin on any port (`http(s)://localhost:*`,
   * `127.0.0.1:*`, `[::1]:*`), so a dev server on this machine can call the gateway.
   */
  corsLoopback?: boolean;
  /** Outside production: serve the local explorer's files (src/http/explorer-assets.ts) under `/explorer/`. */
  explorerAssets?: boolean;
  /** When set, `/graphql` answers only requests that carry it in `Router-Authorization`. */
  routerSecret?: string;
  /**
   * With `routerSecret`: a request that carries no `Router-Authorization` at all is passed on (a
   * direct client, held to the trusted documents by the GraphQL handler); a wrong secret is still
   * refused. Set only by `ROUTER_SECRET_ADMITS_TRUSTED_CLIENTS=true`, which start-up allows only
   * with `TRUSTED_DOCUMENTS` set (README: Trusted documents); otherwise router-only mode refuses
   * every request without the secret.
   */
  admitClientsWithoutRouterSecret?: boolean;
  /** Serves `/graphql`. */
  graphql: ScopedHandler;
  /** Serves every other path (health, readiness, metrics, 404). */
  ops: (req: ScopedRequest, res: ServerResponse, path: string) => Promise<void>;
}

/** An incoming `x-request-id` is reused only when it is this safe; otherwise a fresh id is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * A client's `x-request-id`, when it may be reused: safe to log and echo, and not a revocation
 * job's own id (`revocation-job:<id>`, in any letter case), which only a job's revokes carry.
 */
function acceptableRequestId(given: string | string[] | undefined): given is string {
  return typeof given === "string" && REQUEST_ID.test(given) && !given.toLowerCase().startsWith(JOB_REQUEST_ID_PREFIX);
}

function sendGraphQLError(res: ServerResponse, status: number, message: string, code: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json; charset=utf-8");
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

/**
 * The gateway's HTTP server, before any listener is attached, bounded so that a slow or idle
 * client cannot hold a connection: the whole request (headers included) must arrive within
 * `requestTimeoutMs`, or the client gets a 408 and the connection closes; idle keep-alive
 * connections close after `keepAliveTimeoutMs`; connections past `maxConnections` are dropped at
 * once. Node checks the request deadlines only every `connectionsCheckingInterval` (30 s by
 * default), so here it runs every quarter of the deadline, and at least once a second.
 */
export function createHttpServer(settings: HttpSettings): Server {
  const server = createServer({
    requestTimeout: settings.requestTimeoutMs,
    headersTimeout: settings.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(1, Math.min(1000, Math.floor(settings.requestTimeoutMs / 4))),
  });
  server.keepAliveTimeout = settings.keepAliveTimeoutMs;
  server.maxConnections = settings.maxConnections;
  capConnectionsPerAddress(server, settings.maxConnectionsPerAddress);
  return server;
}

/**
 * True when `origin` (a request's `Origin` header, parsed here once) is a loopback origin: http or
 * https on a loopback host (src/base/loopback.ts), any port, written as a browser writes an origin
 * (no path, no user info, lower case). `null` and anything unparsable are not.
 */
export function isLoopbackOrigin(origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && isLoopbackHost(url.hostname) && url.origin === origin;
}

/** Decides once per request whether its `Origin` is admitted: a listed origin, or (local mode) a loopback one. */
export function corsOriginCheck(origins: readonly string[], loopback: boolean): (origin: string | undefined) => boolean {
  const listed = new Set(origins);
  return (origin) => origin !== undefined && (listed.has(origin) || (loopback && isLoopbackOrigin(origin)));
}

/**
 * CORS for `/graphql`. An admitted origin may send any request header (the preflight reflects
 * `Access-Control-Request-Headers`), so a Sandbox user's own headers pass; and a Private Network
 * Access preflight (`Access-Control-Request-Private-Network: true`) from an admitted origin is
 * answered with `Access-Control-Allow-Private-Network: true`, which is what lets Apollo Sandbox,
 * a public site, reach the gateway on loopback in local mode. Any other origin gets neither, and
 * its preflight is answered without `Access-Control-Allow-Origin`.
 */
function corsMiddleware(admits: (origin: string | undefined) => boolean): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  const common = {
    methods: ["GET", "POST", "OPTIONS"],
    // No `allowedHeaders` on purpose: cors then reflects the preflight's Access-Control-Request-Headers.
    exposedHeaders: ["x-request-id"],
    maxAge: 600,
  };
  // `origin: true` reflects the request's origin (with `Vary: Origin`); an empty list admits none.
  const admitted = cors({ ...common, origin: true });
  const refused = cors({ ...common, origin: [] });
  return (req, res, next) => {
    if (!admits(req.headers.origin)) return refused(req, res, next);
    if (req.method === "OPTIONS" && req.headers["access-control-request-private-network"] === "true") {
      res.setHeader("access-control-allow-private-network", "true");
    }
    admitted(req, res, next);
  };
}

/**
 * The one request listener: every request gets its id (echoed in `x-request-id`) and a lazy
 * logger first; `/graphql` then passes the router secret (when set) and CORS before GraphQL runs;
 * every other path goes to the operations routes. Every `/graphql` answer carries
 * `Cache-Control: no-store`: it holds a caller's data or a worker token. A failure outside
 * GraphQL is logged and answered with a generic 500, never with its detail.
 */
export function gatewayRequestListener(options: RequestListenerOptions): RequestListener {
  const { logger } = options;
  const routerSecretOk = options.routerSecret === undefined ? undefined : routerSecretCheck(options.routerSecret);
  const corsHandler = corsMiddleware(corsOriginCheck(options.corsOrigins, options.corsLoopback === true));

  return (incoming: IncomingMessage, res: ServerResponse) => {
    const given = incoming.headers["x-request-id"];
    const requestId = acceptableRequestId(given) ? given : randomUUID();
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
      if (options.explorerAssets === true && path.startsWith(EXPLORER_PREFIX)) {
        serveExplorerAsset(req, res, path.slice(EXPLORER_PREFIX.length));
        return;
      }
      options.ops(req, res, path).catch(failed);
      return;
    }
    res.setHeader("cache-control", "no-store");
    const routerAuthorization = req.headers["router-authorization"];
    const clientAdmitted = options.admitClientsWithoutRouterSecret === true && routerAuthorization === undefined;
    if (routerSecretOk !== undefined && !clientAdmitted && !routerSecretOk(routerAuthorization)) {
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
