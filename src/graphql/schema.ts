import "reflect-metadata";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { printSchemaWithDirectives } from "@graphql-tools/utils";
import { parse, type GraphQLSchema } from "graphql";
import { buildSchema, createResolversMap } from "type-graphql";
import { RevocationJobEventsResolver, WorkerHistoryResolver, WorkerSessionHistoryResolver } from "./history.resolver.js";
import { MagicLinkResolver } from "./magic-link.resolver.js";
import { applyEdge } from "./edge.js";
import { workerEntity } from "./edge-input.js";
import { RevocationJobResolver } from "./revocation-job.resolver.js";
import { Worker } from "./types/worker.type.js";
import { WorkerResolver } from "./worker.resolver.js";
import { WorkerSessionResolver } from "./worker-session.resolver.js";

/** The Federation 2 link this subgraph is written against. */
export const FEDERATION_LINK = '@link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])';

/**
 * Builds the executable subgraph schema. The order matters:
 *  1. type-graphql builds a plain schema from the decorated classes (no federation types yet, so
 *     its own check would fail on `@key`: `skipCheck`);
 *  2. it is printed *with* directives, so `@key` survives, behind the federation `@link`;
 *  3. type-graphql's resolvers are extracted as a map, plus `Worker.__resolveReference`;
 *  4. `buildSubgraphSchema` adds `_service`, `_entities` and `_Entity`;
 *  5. the edge pipeline (edge.ts) wraps every guarded field: input parsing, the shield permission
 *     map (deny by default), the caller quota and audit lines. It fails here, at start-up, when a
 *     Mutation field has no audit action.
 */
export async function buildGatewaySchema(): Promise<GraphQLSchema> {
  const typeGraphqlSchema = await buildSchema({
    resolvers: [
      WorkerSessionResolver,
      WorkerResolver,
      MagicLinkResolver,
      RevocationJobResolver,
      WorkerSessionHistoryResolver,
      WorkerHistoryResolver,
      RevocationJobEventsResolver,
    ],
    orphanedTypes: [Worker],
    skipCheck: true,
    validate: false,
  });
  // type-graphql has no decorator for the root types' own descriptions; they ship in the SDL too.
  const queryType = typeGraphqlSchema.getQueryType();
  if (queryType) queryType.description = "Reads of the session ledger this gateway keeps, and of revocation jobs.";
  const mutationType = typeGraphqlSchema.getMutationType();
  if (mutationType) mutationType.description =
    "Mint and revoke Deel worker access tokens, hand out magic links that keep the token inside the gateway, and revoke in bulk.";
  const sdl = `extend schema ${FEDERATION_LINK}\n\n${printSchemaWithDirectives(typeGraphqlSchema)}`;
  const resolvers = createResolversMap(typeGraphqlSchema) as Record<string, Record<string, unknown>>;
  resolvers.Worker = {
    ...resolvers.Worker,
    // An entity reference is only its key, parsed here once (edge-input.ts): the session is
    // resolved by the guarded field, which reads the parsed key.
    __resolveReference: workerEntity,
  };
  const subgraph = buildSubgraphSchema({ typeDefs: parse(sdl), resolvers: resolvers as never });
  return applyEdge(subgraph);
}
