/**
 * @graphql-hive/gateway 2.x in front of the worker-sessions subgraph: the caller's Authorization
 * goes to every subgraph, the router secret (`Router-Authorization`) to worker-sessions only.
 * Spread it into the gateway's configuration:
 *
 *   // gateway.config.ts
 *   export const gatewayConfig = defineConfig({ ...propagateCallerHeaders(process.env.ROUTER_SECRET) });
 *   // or in process
 *   const gateway = createGatewayRuntime({ supergraph, ...propagateCallerHeaders(process.env.ROUTER_SECRET) });
 */
import type { GatewayConfigBase } from "@graphql-hive/gateway";

/** The name the subgraph is published and composed under. */
export const WORKER_SESSIONS_SUBGRAPH = "worker-sessions";

export function propagateCallerHeaders(routerSecret: string | undefined): Pick<GatewayConfigBase<Record<string, unknown>>, "propagateHeaders"> {
  return {
    propagateHeaders: {
      fromClientToSubgraphs({ request, subgraphName }) {
        const headers: Record<string, string> = {};
        const authorization = request.headers.get("authorization");
        if (authorization !== null) headers.authorization = authorization;
        if (routerSecret !== undefined && subgraphName === WORKER_SESSIONS_SUBGRAPH) headers["router-authorization"] = routerSecret;
        return headers;
      },
    },
  };
}
