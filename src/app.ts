import { setTimeout as delay } from "node:timers/promises";
import "reflect-metadata";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import cors from "cors";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { CallerQuota } from "./auth/caller-quota.js";
import { routerSecretCheck } from "./auth/router-secret.js";
import { AuthError, CallerVerifier } from "./auth/verifier.js";
import type { Config } from "./config.js";
import { createDeelStack, type BreakerState, type DeelStack } from "./deel/create-deel.js";
import { assertNever } from "./errors.js";
import type { DeelApi } from "./deel/types.js";
import { createContext, type GatewayContext } from "./graphql/context.js";
import { createFormatError, errorLogging } from "./graphql/errors.js";
import { requestLimits } from "./graphql/limits.js";
import { buildGatewaySchema } from "./graphql/schema.js";
import { createGraphQLHandler } from "./http/graphql-handler.js";
import { createLogger } from "./http/logger.js";
import { GatewayMetrics } from "./http/metrics.js";
import { createInfrastructure } from "./infrastructure.js";
import { CountedStore } from "./sessions/counted-store.js";
import { WorkerSessionService } from "./sessions/service.js";
import type { SessionStore } from "./sessions/store.js";

/** The origin Apollo Sandbox runs on; admitted by CORS in local mode. */
export const APOLLO_SANDBOX_ORIGIN = "https://studio.apollographql.com";
/** Request bodies above this are refused with 413. */
export const MAX_BODY_BYTES = 100 * 1024;

/** Parts a test or the benchmark may hand in instead of the ones built from config. */
export interface AppOverrides {
  logger?: Logger;
  store?: SessionStore;
  deel?: DeelApi;
}

export interface App {
  readonly config: Config;
  readonly logger: Logger;
  readonly store: SessionStore;
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  /** Starts listening on config.host:config.port; resolves to the GraphQL URL. */
  listen(): Promise<string>;
  /** Stops accepting, lets in-flight requests finish (bounded), then closes the store. */
  close(): Promise<void>;
}

/** What every request carries once it has been given its id. */
type GatewayRequest = IncomingMessage & { requestId: string; log: Logger };

declare module "express-serve-static-core" {
  interface Request {
    requestId: string;
    log: Logger;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** Feeds the Deel layer's events into metrics, and logs every circuit transition. */
function watchDeel(stack: DeelStack, metrics: GatewayMetrics, logger: Logger): void {
  metrics.watchDeel({
    budgetQueueDepth: () => stack.state().budgetQueueDepth,
    breakerState: () => BREAKER_GAUGE[stack.state().breaker],
  });
  stack.observe((event) => {
    switch (event.type) {
      case "attempt_start":
        metrics.budgetWait(event.budgetWaitMs / 1000);
        break;
      case "attempt_end":
        metrics.deelCall(event.endpoint, event.status ?? 0, event.durationMs / 1000);
        break;
      case "breaker":
        logger.warn({ from: event.from, to: event.to }, `circuit toward Deel is now ${event.to}`);
        break;
      case "rejected":
        break;
      default:
        assertNever(event);
    }
  });
}

/** Wires the gateway: Deel client, ledger, caller verifier, schema and HTTP routes. */
export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const infra = await createInfrastructure(config, { logger, ...(overrides.store === undefined ? {} : { store: overrides.store }) });
  const deelStack = overrides.deel === undefined ? createDeelStack(config, infra.budget) : undefined;
  const deel: DeelApi = overrides.deel ?? (deelStack as DeelStack).api;
  const verifier = new CallerVerifier(config.auth);
  const metrics = new GatewayMetrics();
  const store = new CountedStore(infra.store, metrics.storeReads);
  const sessions = new WorkerSessionService({ deel, store, serializer: infra.serializer });
  const quota = new CallerQuota(config.callerMutationsPerMinute);
  if (deelStack !== undefined) watchDeel(deelStack, metrics, logger);
  const limits = requestLimits(config.production);

  const app = express();
  app.disable("x-powered-by");
  // Operations routes only: no answer here is a cacheable representation worth an ETag.
  app.set("etag", false);
  app.set("trust proxy", false);
  const server = createServer();

  const apollo = new ApolloServer<GatewayContext>({
    schema: await buildGatewaySchema(),
    // Every security-relevant option is set here rather than left to NODE_ENV-driven defaults.
    nodeEnv: config.production ? "production" : "development",
    formatError: createFormatError(config.localMode),
    introspection: !config.production,
    includeStacktraceInErrorResponses: config.localMode,
    hideSchemaDetailsFromClientErrors: config.production,
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    persistedQueries: false,
    stopOnTerminationSignals: false,
    validationRules: limits.validationRules,
    plugins: [
      ...limits.plugins,
      metrics.apolloPlugin(),
      errorLogging(logger),
      ApolloServerPluginDrainHttpServer({ httpServer: server, stopGracePeriodMillis: config.shutdownGraceMs }),
      // Federated tracing (ftv1) costs time on every request; off unless a deployment needs it.
      ApolloServerPluginInlineTraceDisabled(),
      // Nothing here is cacheable by a CDN; the cache-control plugin would hook every field.
      ApolloServerPluginCacheControlDisabled(),
      config.production ? ApolloServerPluginLandingPageDisabled() : ApolloServerPluginLandingPageLocalDefault({ embed: true }),
    ],
  });
  await apollo.start();

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (req, res) => {
    try {
      await store.ping();
      res.json({ status: "ready" });
    } catch (error) {
      req.log.warn({ err: error }, "readiness check failed: the session store does not answer");
      res.status(503).json({ status: "unavailable", reason: "session store does not answer" });
    }
  });
  app.get("/metrics", async (_req, res) => {
    res.setHeader("content-type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: "not found", path: req.path.slice(0, 200) });
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    req.log.error({ err: error }, "HTTP request failed");
    if (!res.headersSent) res.status(500).json({ error: "request failed" });
  });

  const corsHandler = cors({
    origin: config.localMode ? [...config.corsOrigins, APOLLO_SANDBOX_ORIGIN] : config.corsOrigins,
    methods: ["GET", "POST", "OPTIONS"],
    allowedHeaders: [
      "authorization",
      "content-type",
      "x-request-id",
      "apollo-require-preflight",
      "x-apollo-operation-name",
      "apollographql-client-name",
      "apollographql-client-version",
    ],
    exposedHeaders: ["x-request-id"],
    maxAge: 600,
  });
  const routerSecretOk = config.routerSecret === undefined ? undefined : routerSecretCheck(config.routerSecret);
  const graphql = createGraphQLHandler(apollo, {
    maxBodyBytes: MAX_BODY_BYTES,
    context: async (req) => {
      const { requestId } = req as GatewayRequest;
      const log = () => (req as GatewayRequest).log;
      let caller = null;
      let authError: AuthError | null = null;
      try {
        caller = await verifier.verify(req.headers.authorization);
      } catch (error) {
        authError = error instanceof AuthError ? error : new AuthError("Caller could not be verified");
        if (!(error instanceof AuthError)) log().error({ err: error }, "caller verification failed unexpectedly");
      }
      return createContext({ requestId, log, caller, authError, sessions, quota });
    },
  });

  /**
   * Every request gets its id first. /graphql is served by Apollo on the plain node:http request
   * (the hot path); the operations routes by express.
   */
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    // A child logger costs a redaction pass over its bindings; most requests never log, so the
    // child is made on first use.
    let log: Logger | undefined;
    const requestLog = () => (log ??= logger.child({ requestId }));
    Object.defineProperty(req, "log", { get: requestLog, configurable: true });
    Object.assign(req, { requestId });
    res.setHeader("x-request-id", requestId);
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    if ((queryAt === -1 ? url : url.slice(0, queryAt)) !== "/graphql") {
      app(req, res);
      return;
    }
    if (routerSecretOk !== undefined && !routerSecretOk(req.headers["router-authorization"])) {
      requestLog().warn("refused a request without the router secret");
      res.statusCode = 401;
      res.setHeader("content-type", "application/json; charset=utf-8");
      res.end(JSON.stringify({ errors: [{ message: "This subgraph only answers the supergraph router", extensions: { code: "UNAUTHENTICATED" } }] }));
      return;
    }
    corsHandler(req, res, (corsError?: unknown) => {
      const failed = (error: unknown) => {
        requestLog().error({ err: error }, "GraphQL request failed outside GraphQL");
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end(JSON.stringify({ errors: [{ message: "Internal server error", extensions: { code: "INTERNAL_SERVER_ERROR" } }] }));
        } else res.destroy();
      };
      if (corsError !== undefined) return failed(corsError);
      graphql(req, res).catch(failed);
    });
  });

  let closing: Promise<void> | undefined;
  return {
    config,
    logger,
    store,
    server,
    metrics,
    listen() {
      return new Promise<string>((resolve, reject) => {
        server.once("error", reject);
        server.listen(config.port, config.host, () => {
          server.off("error", reject);
          const { port } = server.address() as AddressInfo;
          const host = config.host.includes(":") ? `[${config.host}]` : config.host === "0.0.0.0" ? "127.0.0.1" : config.host;
          resolve(`http://${host}:${port}/graphql`);
        });
      });
    },
    close() {
      closing ??= (async () => {
        // The drain plugin stops accepting and waits for in-flight requests, bounded by the grace.
        const grace = delay(config.shutdownGraceMs, undefined, { ref: false });
        await Promise.race([apollo.stop(), grace]);
        server.closeAllConnections();
        // A create cut off by the drain may still be waiting on Deel: let it finish and record
        // what Deel minted before the ledger closes (each call is bounded by DEEL_TIMEOUT_MS).
        await Promise.race([sessions.settle(), delay(config.deel.timeoutMs + 1000, undefined, { ref: false })]);
        await infra.close();
        await deelStack?.close();
      })();
      return closing;
    },
  };
}
