import { setTimeout as delay } from "node:timers/promises";
import "reflect-metadata";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { CallerQuota } from "./auth/caller-quota.js";
import { CallerVerifier } from "./auth/verifier.js";
import { systemClock, type Clock } from "./base/clock.js";
import type { Config } from "./config.js";
import { createResilientDeel, type BreakerState, type ResilientDeelHandle } from "./deel/create-deel.js";
import type { DeelApi } from "./deel/types.js";
import { assertNever } from "./base/assert-never.js";
import { systemBackgroundClock } from "./base/clock.js";
import { auditSessionOutcome, outcomeOf } from "./graphql/audit.js";
import { createContextFactory } from "./graphql/context.js";
import { createApolloServer } from "./graphql/server.js";
import { createGraphQLHandler } from "./http/graphql-handler.js";
import { createLogger } from "./http/logger.js";
import { GatewayMetrics } from "./http/metrics.js";
import { createOpsRoutes } from "./http/ops-routes.js";
import { routerSecretCheck } from "./http/router-secret.js";
import { createHttpServer, gatewayRequestListener, type ScopedRequest } from "./http/server.js";
import { createSharedState } from "./shared-state.js";
import { CountedStore } from "./sessions/counted-store.js";
import { RevocationInProgressError } from "./sessions/errors.js";
import { intentStaleAfterMs } from "./sessions/intent.js";
import { RevocationRunner } from "./sessions/jobs/runner.js";
import { WorkerSessionService } from "./sessions/service.js";
import type { SessionStore } from "./sessions/store.js";
import { deelSpanEvents } from "./telemetry/deel-events.js";
import { traceGraphQLRequests } from "./telemetry/http-span.js";
import { operationSpanPlugin } from "./telemetry/operation-plugin.js";
import { TracedBudget } from "./telemetry/traced-budget.js";
import { deelTracing } from "./telemetry/traced-deel.js";
import { TracedStore } from "./telemetry/traced-store.js";
import { startTracing } from "./telemetry/tracing.js";

/** The origin Apollo Sandbox runs on; admitted by CORS in local mode. */
export const APOLLO_SANDBOX_ORIGIN = "https://studio.apollographql.com";

/** Parts a test or the benchmark may hand in instead of the ones built from config. */
export interface AppOverrides {
  logger?: Logger;
  store?: SessionStore;
  deel?: DeelApi;
  /**
   * The time the Deel layer and the metrics read (deadlines, retries, breaker cooldown, the abort of
   * a request at its deadline). Default: the real clock. The outbound budget, built with the shared
   * state, keeps the real clock: hand in another one only with pacing off (DEEL_RATE_LIMIT_RPS=0).
   */
  clock?: Clock;
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

/** `db.system.name` of each ledger backend, as the OpenTelemetry conventions spell them. */
const DB_SYSTEM = { memory: "memory", sqlite: "sqlite", redis: "redis", postgres: "postgresql" } as const;

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** Feeds the Deel layer's events into metrics, and logs every circuit transition. */
function watchDeel(stack: ResilientDeelHandle, metrics: GatewayMetrics, logger: Logger): void {
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
  const logger = overrides.logger ?? createLogger(config.logLevel, undefined, { budget: config.log });
  const shared = await createSharedState(config, { logger, ...(overrides.store === undefined ? {} : { store: overrides.store }) });
  const clock = overrides.clock ?? systemClock;
  // Tracing (README: Tracing) decorates the budget, the Deel client and the ledger; off, nothing is wrapped.
  const tracing = config.tracing.enabled ? startTracing(config.tracing) : undefined;
  const traceDeel = tracing === undefined ? undefined : deelTracing(tracing.tracer, new URL(config.deel.apiUrl).host);
  const budget = tracing === undefined || shared.budget === null ? shared.budget : new TracedBudget(shared.budget, tracing.tracer);
  const deelHandle = overrides.deel === undefined ? createResilientDeel(config.deel, budget, clock, traceDeel?.inner) : undefined;
  const untracedDeel: DeelApi = overrides.deel === undefined ? (deelHandle as ResilientDeelHandle).api : (traceDeel?.inner(overrides.deel) ?? overrides.deel);
  const deel = traceDeel?.outer(untracedDeel) ?? untracedDeel;
  const metrics = new GatewayMetrics(clock);
  const ledger = tracing === undefined ? shared.store : new TracedStore(shared.store, tracing.tracer, DB_SYSTEM[config.store.kind]);
  const store = new CountedStore(ledger, metrics.storeReads);
  const sessions = new WorkerSessionService({
    deel,
    report: auditSessionOutcome,
    // The session history records a refusal with the code its caller was answered with.
    outcomeCode: outcomeOf,
    store,
    lock: shared.lock,
    intentStaleAfterMs: intentStaleAfterMs(config.deel.timeoutMs),
    timeoutMs: config.deel.timeoutMs,
    // The kill switch: creates for a running revocation job's profiles (or by its createdBy) are refused.
    createGuard: async (profileId, sub) => {
      const blocking = await shared.jobs.blockingJob(profileId, sub);
      if (blocking !== null) throw new RevocationInProgressError(blocking.id, blocking.reason);
    },
  });
  const revocations = new RevocationRunner({
    jobs: shared.jobs,
    store,
    sessions,
    logger,
    settings: {
      leaseMs: config.revocation.leaseMs,
      pollMs: config.revocation.pollMs,
      // DEEL_RATE_LIMIT_RPS revokes in flight keep the shared budget busy; interactive calls queue
      // behind at most one window of them.
      concurrency: config.deel.rateLimitRps > 0 ? config.deel.rateLimitRps : 5,
      // The job is the one retry layer for its revokes (each try is one Deel attempt): 8 tries,
      // 1 s doubling to 30 s apart (or Deel's Retry-After): about a minute and a half of trouble.
      maxAttempts: 8,
    },
    clock: systemBackgroundClock,
  });
  if (deelHandle !== undefined) watchDeel(deelHandle, metrics, logger);
  if (deelHandle !== undefined && tracing !== undefined) deelHandle.observe(deelSpanEvents);

  const server = createHttpServer(config.http);
  let apollo: Awaited<ReturnType<typeof createApolloServer>>;
  let verifier: CallerVerifier;
  try {
    apollo = await createApolloServer({ config, logger, metrics, httpServer: server, ...(tracing === undefined ? {} : { plugins: [operationSpanPlugin()] }) });
    verifier = new CallerVerifier(config.auth);
  } catch (error) {
    // Start-up failed after the shared state was opened: close it, or its connections and pools
    // would keep the process alive.
    await shared.close().catch(() => undefined);
    await deelHandle?.close().catch(() => undefined);
    await tracing?.shutdown().catch(() => undefined);
    throw error;
  }
  // Jobs are looked for only once the gateway can start: a failed start leaves no poller behind.
  revocations.start();
  const context = createContextFactory({
    verifier,
    sessions,
    quota: new CallerQuota(config.callerMutationsPerMinute),
    magicLinkRedirectOrigins: config.magicLinkRedirectOrigins,
    revocations,
  });
  const routerOk = config.routerSecret === undefined ? undefined : routerSecretCheck(config.routerSecret);
  server.on(
    "request",
    gatewayRequestListener({
      logger,
      corsOrigins: config.localMode ? [...config.corsOrigins, APOLLO_SANDBOX_ORIGIN] : config.corsOrigins,
      corsLoopback: config.localMode,
      explorerAssets: !config.production,
      ...(config.routerSecret === undefined ? {} : { routerSecret: config.routerSecret }),
      // Direct clients past ROUTER_SECRET only when the deployment opted in (README: Trusted documents).
      admitClientsWithoutRouterSecret: config.routerSecretAdmitsTrustedClients,
      // With tracing on, one server span per request, the parent of everything it does.
      graphql: traceGraphQLRequests(tracing?.tracer, createGraphQLHandler(apollo, {
        maxBodyBytes: config.limits.maxBodyBytes,
        context: (req) => context(req as ScopedRequest),
        // Trusted documents hold every client; the router (ROUTER_SECRET) sends its own query plans.
        ...(config.trustedDocuments === undefined
          ? {}
          : {
              trustedDocuments: config.trustedDocuments,
              // A stale client after a deploy shows here first; the log budget bounds a flood.
              onUntrusted: (req, message) => (req as ScopedRequest).log.warn({ code: "UNTRUSTED_DOCUMENT" }, message),
            }),
        ...(routerOk === undefined ? {} : { fromRouter: (req) => routerOk(req.headers["router-authorization"]) }),
      })),
      ops: createOpsRoutes({ ping: () => store.ping(), pendingWrites: () => sessions.pendingWrites, metrics }),
    }),
  );

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
        // Revocation jobs stop taking targets, finish their revokes in flight and release their leases.
        const revocationsStopped = revocations.stop();
        await Promise.race([apollo.stop(), grace]);
        server.closeAllConnections();
        // A create cut off by the drain may still be waiting on Deel: let it finish and record
        // what Deel minted before the ledger closes (each call is bounded by DEEL_TIMEOUT_MS).
        await Promise.race([sessions.settle(), delay(config.deel.timeoutMs + 1000, undefined, { ref: false })]);
        await revocationsStopped;
        await shared.close();
        await deelHandle?.close();
        // The spans of the last requests leave before the process does.
        await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, "tracing: the last spans could not be exported"));
      })();
      return closing;
    },
  };
}
