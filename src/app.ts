import "reflect-metadata";
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginInlineTraceDisabled, ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import { expressMiddleware } from "@as-integrations/express5";
import cors, { type CorsOptions } from "cors";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { CallerQuota } from "./auth/caller-quota.js";
import { requireRouterSecret } from "./auth/router-secret.js";
import { AuthError, CallerVerifier } from "./auth/verifier.js";
import type { Config } from "./config.js";
import { createDeelStack, type BreakerState, type DeelStack } from "./deel/create-deel.js";
import { assertNever } from "./errors.js";
import type { DeelApi } from "./deel/types.js";
import { createContext, type GatewayContext } from "./graphql/context.js";
import { createFormatError } from "./graphql/errors.js";
import { requestLimits } from "./graphql/limits.js";
import { buildGatewaySchema } from "./graphql/schema.js";
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
  app.set("trust proxy", false);
  const server = createServer(app);

  const apollo = new ApolloServer<GatewayContext>({
    schema: await buildGatewaySchema(),
    // Every security-relevant option is set here rather than left to NODE_ENV-driven defaults.
    nodeEnv: config.production ? "production" : "development",
    formatError: createFormatError(logger, config.localMode),
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
      ApolloServerPluginDrainHttpServer({ httpServer: server }),
      // Federated tracing (ftv1) costs time on every request; off unless a deployment needs it.
      ApolloServerPluginInlineTraceDisabled(),
      config.production ? ApolloServerPluginLandingPageDisabled() : ApolloServerPluginLandingPageLocalDefault({ embed: true }),
    ],
  });
  await apollo.start();

  app.use((req: Request, res: Response, next: NextFunction) => {
    const given = req.headers["x-request-id"];
    req.requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    req.log = logger.child({ requestId: req.requestId });
    res.setHeader("x-request-id", req.requestId);
    next();
  });

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

  if (config.routerSecret !== undefined) app.use("/graphql", requireRouterSecret(config.routerSecret));

  const corsOptions: CorsOptions = {
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
  };
  app.use(
    "/graphql",
    cors(corsOptions),
    express.json({ limit: MAX_BODY_BYTES }),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        let caller = null;
        let authError: AuthError | null = null;
        try {
          caller = await verifier.verify(req.headers.authorization);
        } catch (error) {
          authError = error instanceof AuthError ? error : new AuthError("Caller could not be verified");
          if (!(error instanceof AuthError)) req.log.error({ err: error }, "caller verification failed unexpectedly");
        }
        return createContext({ requestId: req.requestId, log: req.log, caller, authError, sessions, quota });
      },
    }),
  );

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: "not found", path: req.path.slice(0, 200) });
  });
  // Body-parser and other HTTP-level errors: a status and a short reason, never a stack.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = typeof (error as { status?: unknown }).status === "number" ? (error as { status: number }).status : 500;
    if (status >= 500) req.log.error({ err: error }, "HTTP request failed");
    const reason = status === 413 ? "request body too large" : status === 400 ? "malformed request body" : "request failed";
    if (!res.headersSent) res.status(status).json({ errors: [{ message: reason, extensions: { code: status === 500 ? "INTERNAL_SERVER_ERROR" : "BAD_REQUEST" } }] });
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
        const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
        await Promise.race([apollo.stop(), grace]);
        server.closeAllConnections();
        await infra.close();
        await deelStack?.close();
      })();
      return closing;
    },
  };
}
