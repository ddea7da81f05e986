import type { Server } from "node:http";
import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginInlineTrace } from "@apollo/server/plugin/inlineTrace";
import type { Logger } from "pino";
import { explorerPageHtml, type ExplorerPrefill } from "../http/explorer-page.js";
import type { GatewayMetrics } from "../http/metrics.js";
import type { GatewayContext } from "./context.js";
import { entityFetchGuard } from "./entity-guard.js";
import { guardedEntityFields } from "./permissions.js";
import { createFormatError, errorLogging } from "./errors.js";
import { requestLimits, type RequestLimitSettings } from "./limits.js";
import { ENTITY_TYPES } from "./entity-types.js";
import { buildGatewaySchema } from "./schema.js";

export interface ApolloDeps {
  config: ApolloSettings;
  logger: Logger;
  metrics: GatewayMetrics;
  /** Drained by Apollo on stop: no new connections, in-flight requests finish within the grace. */
  httpServer: Server;
  /** Added after the gateway's own (e.g. the tracing layer's operation span). */
  plugins?: readonly ApolloServerPlugin<GatewayContext>[];
}

/** An operation, its variables and request headers that the explorer (Sandbox, or GraphiQL offline) starts with. */
export type SandboxPrefill = ExplorerPrefill;

/** What the Apollo options depend on (a subset of the gateway's Config). */
export interface ApolloSettings {
  readonly production: boolean;
  readonly localMode: boolean;
  readonly maxEntityRepresentations: number;
  readonly maxEntityCost: number;
  readonly shutdownGraceMs: number;
  /** The request limits (GRAPHQL_MAX_*); every refusal names its setting. */
  readonly limits: RequestLimitSettings;
  readonly sandboxPrefill?: SandboxPrefill;
  /**
   * Answer a router's `apollo-federation-include-trace: ftv1` with Apollo's inline trace. With
   * ROUTER_SECRET set, the HTTP handler drops that header from every request without the secret,
   * so a direct client never gets a trace.
   */
  readonly apolloFederatedTracing: boolean;
}

/**
 * The page at `GET /graphql` outside production (src/http/explorer-page.ts): the embedded Apollo
 * Sandbox from Apollo's CDN, telemetry off, and when that CDN cannot be reached, GraphiQL served by
 * the gateway itself. In local mode both open with an example operation and the admin caller's
 * Authorization header, values the gateway itself made (the header only when it listens on loopback).
 */
function landingPage(prefill: SandboxPrefill | undefined): ApolloServerPlugin<GatewayContext> {
  return {
    async serverWillStart() {
      // A function: a fresh CSP nonce for every page served.
      return { async renderLandingPage() { return { html: async () => explorerPageHtml(prefill) }; } };
    },
  };
}

/**
 * The started Apollo Server for the subgraph. Every security-relevant option is set here rather
 * than left to defaults that depend on NODE_ENV: production hides introspection, the landing page,
 * stack traces and schema suggestions; local mode shows the embedded Sandbox.
 */
export async function createApolloServer(deps: ApolloDeps): Promise<ApolloServer<GatewayContext>> {
  const { config, logger, metrics, httpServer } = deps;
  const limits = requestLimits(config.production, config.limits);
  const schema = await buildGatewaySchema();
  const apollo = new ApolloServer<GatewayContext>({
    schema,
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
    parseOptions: limits.parseOptions,
    plugins: [
      ...limits.plugins,
      entityFetchGuard({
        maxRepresentations: config.maxEntityRepresentations,
        maxCost: config.maxEntityCost,
        guardedFields: guardedEntityFields(schema, ENTITY_TYPES),
      }),
      metrics.apolloPlugin(),
      errorLogging(logger),
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownGraceMs }),
      // Federated tracing (ftv1) costs time on every traced request; off unless a deployment needs
      // it (APOLLO_FEDERATED_TRACING). Error messages in the trace are masked: GraphOS sees codes and paths.
      config.apolloFederatedTracing ? ApolloServerPluginInlineTrace({ includeErrors: { masked: true } }) : ApolloServerPluginInlineTraceDisabled(),
      // Nothing here is cacheable by a CDN; the cache-control plugin would hook every field.
      ApolloServerPluginCacheControlDisabled(),
      config.production ? ApolloServerPluginLandingPageDisabled() : landingPage(config.sandboxPrefill),
      ...(deps.plugins ?? []),
    ],
  });
  await apollo.start();
  return apollo;
}
