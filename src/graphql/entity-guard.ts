import type { ApolloServerPlugin, GraphQLRequestContextDidResolveOperation } from "@apollo/server";
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

/** The bounds an entity fetch is held to (MAX_ENTITY_REPRESENTATIONS, MAX_ENTITY_COST). */
export interface EntityFetchBounds {
  /** Representations of all `_entities` fields together, aliases included. */
  readonly maxRepresentations: number;
  /** Σ over `_entities` fields of representations × guarded fields selected on each (at least 1). */
  readonly maxCost: number;
  /** Per entity type, the fields that run a permission rule for every representation. */
  readonly guardedFields: ReadonlyMap<string, ReadonlySet<string>>;
}

/** What an operation's entity fetches carry: representations and their cost, or undefined without `_entities`. */
export interface EntityLoad {
  representations: number;
  cost: number;
}

/**
 * Guards `_entities` before any resolver runs. An entity fetch is what a router sends, and what it
 * costs is its representations times the guarded fields it selects on each (every one runs the
 * permission map, and a refusal is an error to build and send), so:
 *  - it needs a verified caller (the rules of `Worker.session` would refuse every entity anyway;
 *    this refuses the whole fetch at once instead of resolving each representation first);
 *  - its representations, all `_entities` fields and aliases together, are at most
 *    `maxRepresentations` (a router batches at most that many per subgraph request);
 *  - its cost is at most `maxCost`: one budget for the request, whether a client wrote it or a
 *    router merged many fetches into it (Hive Gateway's `_v0__entities`, `_v1__entities`, …).
 * The checks read only the parsed operation and the raw variables: nothing is coerced, loaded or
 * resolved for a refused request, which answers 401 or 400. Documents without `_entities` pay one
 * walk of their root selections.
 */
export function entityFetchGuard(bounds: EntityFetchBounds): ApolloServerPlugin<GatewayContext> {
  const listeners = {
    async didResolveOperation({ operation, document, request, contextValue }: GraphQLRequestContextDidResolveOperation<GatewayContext>) {
      const load = operation === undefined ? undefined : entityLoad(operation, document, request.variables, bounds.guardedFields);
      if (load === undefined) return;
      if (contextValue.auth.kind !== "verified") {
        throw refusal("UNAUTHENTICATED", contextValue.auth.error.message, 401);
      }
      if (load.representations > bounds.maxRepresentations) {
        throw refusal(
          "BAD_USER_INPUT",
          `An entity fetch may carry at most ${bounds.maxRepresentations} representations in one request (this one carries ${load.representations}); the limit is MAX_ENTITY_REPRESENTATIONS`,
          400,
        );
      }
      if (load.cost > bounds.maxCost) {
        throw refusal(
          "BAD_USER_INPUT",
          `An entity fetch may cost at most ${bounds.maxCost} (representations × guarded fields selected on each; this one costs ${load.cost}); the limit is MAX_ENTITY_COST`,
          400,
        );
      }
    },
  };
  return { requestDidStart: async () => listeners };
}

/**
 * The representations and cost of the operation's root `_entities` fields, all aliases together,
 * or undefined when it has none. Root-level inline fragments and fragment spreads are followed, so
 * wrapping `_entities` in `... on Query { }` is no way around the guard.
 */
export function entityLoad(
  operation: OperationDefinitionNode,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  guardedFields: ReadonlyMap<string, ReadonlySet<string>>,
): EntityLoad | undefined {
  let load: EntityLoad | undefined;
  let fragments: Map<string, FragmentDefinitionNode> | undefined;
  const fragment = (name: string) => (fragments ??= fragmentsOf(document)).get(name);
  const seen = new Set<string>();
  const walk = (selections: readonly SelectionNode[]) => {
    for (const selection of selections) {
      if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet.selections);
      else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const found = fragment(selection.name.value);
        if (found !== undefined && !seen.has(found.name.value)) {
          seen.add(found.name.value);
          walk(found.selectionSet.selections);
        }
      } else if (selection.name.value === "_entities") {
        const argument = selection.arguments?.find((arg) => arg.name.value === "representations");
        const representations = representationCount(argument?.value, operation, variables);
        const guarded = guardedKeys(selection.selectionSet?.selections ?? [], guardedFields, fragment);
        load ??= { representations: 0, cost: 0 };
        load.representations += representations;
        load.cost += representations * Math.max(1, guarded);
      }
    }
  };
  walk(operation.selectionSet.selections);
  return load;
}

/**
 * How many guarded fields one representation resolves: the distinct response keys (alias or name)
 * of guarded fields selected on the entity, through inline fragments and fragment spreads (a key
 * selected twice is resolved once).
 */
function guardedKeys(
  selections: readonly SelectionNode[],
  guardedFields: ReadonlyMap<string, ReadonlySet<string>>,
  fragment: (name: string) => FragmentDefinitionNode | undefined,
): number {
  const keys = new Set<string>();
  const seen = new Set<string>();
  const walk = (nodes: readonly SelectionNode[], typeName: string | undefined) => {
    for (const node of nodes) {
      if (node.kind === Kind.INLINE_FRAGMENT) walk(node.selectionSet.selections, node.typeCondition?.name.value ?? typeName);
      else if (node.kind === Kind.FRAGMENT_SPREAD) {
        const found = fragment(node.name.value);
        if (found !== undefined && !seen.has(found.name.value)) {
          seen.add(found.name.value);
          walk(found.selectionSet.selections, found.typeCondition.name.value);
        }
      } else {
        // Outside a type condition a field could belong to any entity type: count it if any guards it.
        const guarded =
          typeName === undefined ? [...guardedFields.values()].some((fields) => fields.has(node.name.value)) : guardedFields.get(typeName)?.has(node.name.value) === true;
        if (guarded) keys.add(`${typeName ?? ""}.${node.alias?.value ?? node.name.value}`);
      }
    }
  };
  walk(selections, undefined);
  return keys.size;
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}
