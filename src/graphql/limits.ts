import type { ApolloServerPlugin } from "@apollo/server";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import { GraphQLError, Kind, OperationTypeNode, type ValidationContext, type ValidationRule } from "graphql";

/**
 * Request limits tuned to this small schema. The deepest real operation is an entity fetch
 * (`_entities → Worker → session → field`, depth 4); a client never needs aliases to use it;
 * representations travel as variables, so even a 100-entity fetch is a few dozen tokens.
 * Limits are not exposed in the error messages (`exposeLimits: false`).
 */
export const LIMITS = {
  maxDepth: 6,
  maxAliases: 5,
  maxCost: 300,
  maxTokens: 1000,
  maxDirectives: 10,
} as const;

/** Refuses an operation that names more than one mutation field: each Deel call gets its own request. */
export const singleMutationField: ValidationRule = (context: ValidationContext) => ({
  OperationDefinition(node) {
    if (node.operation !== OperationTypeNode.MUTATION) return;
    let fields = 0;
    const count = (selections: readonly { kind: Kind }[], seen: Set<string>) => {
      for (const selection of selections as ReadonlyArray<import("graphql").SelectionNode>) {
        if (selection.kind === Kind.FIELD) fields += 1;
        else if (selection.kind === Kind.INLINE_FRAGMENT) count(selection.selectionSet.selections, seen);
        else if (!seen.has(selection.name.value)) {
          seen.add(selection.name.value);
          const fragment = context.getFragment(selection.name.value);
          if (fragment) count(fragment.selectionSet.selections, seen);
        }
      }
    };
    count(node.selectionSet.selections, new Set());
    if (fields > 1) {
      context.reportError(new GraphQLError("An operation may hold at most one mutation field", { nodes: [node] }));
    }
  },
});

/** graphql-armor's plugins and validation rules, plus the single-mutation rule. */
export function requestLimits(production: boolean): { plugins: ApolloServerPlugin[]; validationRules: ValidationRule[] } {
  const armor = new ApolloArmor({
    maxDepth: { n: LIMITS.maxDepth, ignoreIntrospection: true, flattenFragments: true, exposeLimits: false },
    maxAliases: { n: LIMITS.maxAliases, exposeLimits: false },
    costLimit: { maxCost: LIMITS.maxCost, ignoreIntrospection: true, exposeLimits: false },
    maxTokens: { n: LIMITS.maxTokens, exposeLimits: false },
    maxDirectives: { n: LIMITS.maxDirectives, exposeLimits: false },
    // "Did you mean …" names parts of the schema: hidden in production, helpful in development.
    blockFieldSuggestion: { enabled: production },
  });
  const { plugins, validationRules } = armor.protect();
  // armor's typings name @apollo/server's CommonJS build; the plugin objects are the same shape.
  return { plugins: plugins as unknown as ApolloServerPlugin[], validationRules: [...validationRules, singleMutationField] };
}
