import type { ApolloServerPlugin } from "@apollo/server";
import { GraphQLError, Kind, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionNode, type ValueNode } from "graphql";
import type { GatewayContext } from "./context.js";

/**
 * How many representations one `_entities` field asks for: a list literal, or a list variable
 * (as given, or its default when the request leaves it out).
 */
function representationCount(value: ValueNode | undefined, operation: OperationDefinitionNode, variables: Record<string, unknown> | undefined): number {
  if (value === undefined) return 0;
  if (value.kind === Kind.LIST) return value.values.length;
  if (value.kind === Kind.VARIABLE) {
    const name = value.name.value;
    if (variables !== undefined && Object.hasOwn(variables, name)) {
      const given = variables[name];
      return Array.isArray(given) ? given.length : given === undefined || given === null ? 0 : 1;
    }
    const fallback = operation.variableDefinitions?.find((definition) => definition.variable.name.value === name)?.defaultValue;
    return fallback === undefined ? 0 : representationCount(fallback, operation, undefined);
  }
  return value.kind === Kind.NULL ? 0 : 1;
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
        async didResolveOperation({ operation, document, request, contextValue }) {
          const total = operation === undefined ? undefined : countRepresentations(operation, fragmentsOf(document), request.variables);
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

/**
 * The representations the operation's root `_entities` fields carry, all aliases together, or
 * undefined when it has none. Root-level inline fragments and fragment spreads are followed, so
 * wrapping `_entities` in `... on Query { }` is no way around the guard.
 */
function countRepresentations(
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Record<string, unknown> | undefined,
): number | undefined {
  let total: number | undefined;
  const seen = new Set<string>();
  const walk = (selections: readonly SelectionNode[]) => {
    for (const selection of selections) {
      if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet.selections);
      else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (fragment !== undefined && !seen.has(fragment.name.value)) {
          seen.add(fragment.name.value);
          walk(fragment.selectionSet.selections);
        }
      } else if (selection.name.value === "_entities") {
        const argument = selection.arguments?.find((arg) => arg.name.value === "representations");
        total = (total ?? 0) + representationCount(argument?.value, operation, variables);
      }
    }
  };
  walk(operation.selectionSet.selections);
  return total;
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}
