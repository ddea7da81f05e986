import type { Server } from "node:http";
import { ApolloServer } from "@apollo/server";
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import type { Logger } from "pino";
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
}

/**
 * The embedded Apollo Sandbox, outside production. It loads from Apollo's CDN; its telemetry is off.
 * In local mode it opens with an example operation and the admin caller's Authorization header,
 * values the gateway itself made (the page is served on loopback only in local mode).
 */
/** An operation, its variables and request headers that the embedded Sandbox starts with. */
export interface SandboxPrefill {
  readonly document: string;
  readonly variables: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
}

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
}

function landingPage(prefill: SandboxPrefill | undefined) {
  const embed = { runTelemetry: false, endpointIsEditable: false, initialState: { pollForSchemaUpdates: false } };
  if (prefill === undefined) return ApolloServerPluginLandingPageLocalDefault({ embed });
  return ApolloServerPluginLandingPageLocalDefault({
    embed,
    document: prefill.document,
    variables: { ...prefill.variables },
    headers: { ...prefill.headers },
    includeCookies: false,
  });
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
      // Federated tracing (ftv1) costs time on every request; off unless a deployment needs it.
      ApolloServerPluginInlineTraceDisabled(),
      // Nothing here is cacheable by a CDN; the cache-control plugin would hook every field.
      ApolloServerPluginCacheControlDisabled(),
      config.production ? ApolloServerPluginLandingPageDisabled() : landingPage(config.sandboxPrefill),
    ],
  });
  await apollo.start();
  return apollo;
}
