/**
 * @apollo/gateway 2.x in front of the worker-sessions subgraph: the caller's Authorization goes
 * to every subgraph, the router secret (`Router-Authorization`) to worker-sessions only.
 *
 *   const gateway = new ApolloGateway({ supergraphSdl, buildService: buildService(process.env.ROUTER_SECRET) });
 *   const server = new ApolloServer<RouterContext>({ gateway });
 *   await startStandaloneServer(server, { context: routerContext });
 */
import type { IncomingMessage } from "node:http";
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions, type ServiceEndpointDefinition } from "@apollo/gateway";

/** The name the subgraph is published and composed under. */
export const WORKER_SESSIONS_SUBGRAPH = "worker-sessions";

/** What the router keeps of the incoming request for its subgraph requests. */
export interface RouterContext {
  authorization?: string;
}

/** The router server's `context` function (startStandaloneServer or expressMiddleware). */
export async function routerContext({ req }: { req: IncomingMessage }): Promise<RouterContext> {
  const { authorization } = req.headers;
  return authorization === undefined ? {} : { authorization };
}

/** Sends the caller's Authorization on, and the router secret when it has one. */
export class CallerForwardingDataSource extends RemoteGraphQLDataSource<RouterContext> {
  readonly #routerSecret: string | undefined;

  constructor(url: string, routerSecret?: string) {
    super({ url });
    this.#routerSecret = routerSecret;
  }

  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<RouterContext>): void {
    // Schema loads and health checks have no incoming request, hence no caller.
    const authorization: unknown = context.authorization;
    if (typeof authorization === "string") request.http?.headers.set("authorization", authorization);
    if (this.#routerSecret !== undefined) request.http?.headers.set("router-authorization", this.#routerSecret);
  }
}

/** ApolloGateway's `buildService`: the router secret goes to worker-sessions and nowhere else. */
export function buildService(routerSecret: string | undefined): (service: ServiceEndpointDefinition) => CallerForwardingDataSource {
  return ({ name, url }) => {
    if (url === undefined) throw new Error(`subgraph ${name} has no routing URL`);
    return new CallerForwardingDataSource(url, name === WORKER_SESSIONS_SUBGRAPH ? routerSecret : undefined);
  };
}
