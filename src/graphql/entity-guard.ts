import type { ApolloServerPlugin } from "@apollo/server";
import { GraphQLError, Kind, type OperationDefinitionNode, type ValueNode } from "graphql";
import type { GatewayContext } from "./context.js";

/** How many representations one `_entities` field asks for: a list literal, or a list variable. */
function representationCount(value: ValueNode | undefined, variables: Record<string, unknown> | undefined): number {
  if (value === undefined) return 0;
  if (value.kind === Kind.LIST) return value.values.length;
  if (value.kind === Kind.VARIABLE) {
    const given = variables?.[value.name.value];
    return Array.isArray(given) ? given.length : given === undefined || given === null ? 0 : 1;
  }
  return 1;
}

function refusal(code: "UNAUTHENTICATED" | "BAD_USER_INPUT", message: string, status: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status } } });
}

/**
 * Guards `_entities` before any resolver runs. An entity fetch is what a router sends, and its
 * cost grows with the representations it carries, so:
 *  - it needs a verified caller (the rules of `Worker.session` would refuse every entity anyway;
 *    this refuses the whole fetch at once instead of resolving each representation first);
 *  - the representations of all its `_entities` fields together, aliases included, are at most
 *    `maxRepresentations` (a router batches at most that many per subgraph request).
 * Both checks read only the parsed operation and the raw variables: nothing is coerced, loaded or
 * resolved for a refused request, which answers 401 or 400.
 */
export function entityFetchGuard(maxRepresentations: number): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, request, contextValue }) {
          const total = operation === undefined ? undefined : countRepresentations(operation, request.variables);
          if (total === undefined) return;
          if (contextValue.auth.kind !== "verified") {
            throw refusal("UNAUTHENTICATED", contextValue.auth.error.message, 401);
          }
          if (total > maxRepresentations) {
            throw refusal("BAD_USER_INPUT", `An entity fetch may carry at most ${maxRepresentations} representations in one request`, 400);
          }
        },
      };
    },
  };
}

/** The representations the operation's root `_entities` fields carry, or undefined when it has none. */
function countRepresentations(operation: OperationDefinitionNode, variables: Record<string, unknown> | undefined): number | undefined {
  let total: number | undefined;
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== Kind.FIELD || selection.name.value !== "_entities") continue;
    const argument = selection.arguments?.find((arg) => arg.name.value === "representations");
    total = (total ?? 0) + representationCount(argument?.value, variables);
  }
  return total;
}
