import type { ApolloServerPlugin } from "@apollo/server";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import { GraphQLError, Kind, OperationTypeNode, type DocumentNode, type SelectionNode, type ValidationContext, type ValidationRule } from "graphql";

/**
 * Request limits tuned to this small schema. The deepest real operation is an entity fetch
 * (`_entities → Worker → session → field`, depth 4); a client never needs aliases to use it;
 * representations travel as variables, so even a 100-entity fetch is a few dozen tokens. The
 * costliest client operation is a revocation job with a page of its history events, every field
 * selected (armor's cost: about 380).
 * Limits are not exposed in the error messages (`exposeLimits: false`).
 */
export const LIMITS = {
  maxDepth: 6,
  maxAliases: 5,
  maxCost: 500,
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

/** Root fields a router's query plan fetches from a subgraph: entity fetches and the SDL. */
const ROUTER_FIELDS = new Set(["_entities", "_service", "__typename"]);

/**
 * True when every operation of the document selects only `_entities` / `_service` at its root,
 * as a router's query plan does. Hive Gateway merges parallel entity fetches into one request as
 * `_v0__entities`, `_v1__entities`, … aliases, so the alias and cost limits (which are for
 * operations a client writes) must not refuse these; `routerPlanBounds` bounds them instead. An
 * entity fetch stays bounded by the token limit, the depth limit, the representation cap and the
 * authentication it needs (see `entityFetchGuard`).
 */
export function isRouterShaped(document: DocumentNode): boolean {
  let federationFields = 0;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    if (definition.operation !== OperationTypeNode.QUERY) return false;
    for (const selection of definition.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD || !ROUTER_FIELDS.has(selection.name.value)) return false;
      if (selection.name.value !== "__typename") federationFields += 1;
    }
  }
  return federationFields > 0;
}

/** Most `_entities` fields one router-shaped document may merge (about what 1000 tokens hold). */
export const MAX_MERGED_ENTITY_FETCHES = 24;

/**
 * The bounds a router-shaped document is held to instead of the client alias and cost limits: at
 * most MAX_MERGED_ENTITY_FETCHES root `_entities` fields, one `_service`, and within each fetch no
 * more aliases than a client may use (a client's aliases travel into the router's fetch; Hive merges
 * many fetches into one document, so the bound is per fetch, never summed across them). How much
 * the fetches resolve together is weighed by the entity guard's cost (representations × guarded
 * fields), the one budget every entity fetch has.
 */
export const routerPlanBounds: ValidationRule = (context: ValidationContext) => {
  if (!isRouterShaped(context.getDocument())) return {};
  const aliasesBelow = (selections: readonly SelectionNode[], seen: Set<string>): number => {
    let aliases = 0;
    for (const selection of selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.alias !== undefined) aliases += 1;
        if (selection.selectionSet !== undefined) aliases += aliasesBelow(selection.selectionSet.selections, seen);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) aliases += aliasesBelow(selection.selectionSet.selections, seen);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = context.getFragment(selection.name.value);
        if (fragment !== undefined && fragment !== null) aliases += aliasesBelow(fragment.selectionSet.selections, seen);
      }
    }
    return aliases;
  };
  return {
    OperationDefinition(node) {
      let entities = 0;
      let services = 0;
      let mostAliases = 0;
      for (const selection of node.selectionSet.selections) {
        if (selection.kind !== Kind.FIELD) continue;
        if (selection.name.value === "_entities") entities += 1;
        if (selection.name.value === "_service") services += 1;
        mostAliases = Math.max(mostAliases, aliasesBelow(selection.selectionSet?.selections ?? [], new Set()));
      }
      if (entities > MAX_MERGED_ENTITY_FETCHES || services > 1) {
        context.reportError(
          new GraphQLError(
            `A router's fetch may merge at most ${MAX_MERGED_ENTITY_FETCHES} _entities fields and one _service (this one has ${entities} and ${services})`,
            { nodes: [node] },
          ),
        );
      }
      if (mostAliases > LIMITS.maxAliases) {
        context.reportError(new GraphQLError(`An entity fetch may use at most ${LIMITS.maxAliases} aliases below its root field (one uses ${mostAliases})`, { nodes: [node] }));
      }
    },
  };
};

/** A validation rule that does not apply to router-shaped documents. */
function forClientOperations(rule: ValidationRule): ValidationRule {
  return (context) => (isRouterShaped(context.getDocument()) ? {} : rule(context));
}

export interface RequestLimits {
  plugins: ApolloServerPlugin[];
  validationRules: ValidationRule[];
  /** For Apollo's parser: a document over the token limit fails to parse (400 GRAPHQL_PARSE_FAILED). */
  parseOptions: { maxTokens: number };
}

/**
 * graphql-armor's validation rules (alias, depth, cost and directive limits), plus the
 * single-mutation rule. The token limit is Apollo's own parse limit rather than armor's plugin, so
 * that a syntax error or an over-long document is a 400 parse failure with its location, as any
 * GraphQL server answers it. Alias, depth and cost limits are waived for router-shaped documents.
 */
export function requestLimits(production: boolean): RequestLimits {
  const off = { enabled: false } as const;
  const none = { maxDepth: off, maxAliases: off, costLimit: off, maxDirectives: off, maxTokens: off, blockFieldSuggestion: off };
  // One armor instance per limit, so that each rule is known by what it limits.
  const rules = (config: ConstructorParameters<typeof ApolloArmor>[0]) => new ApolloArmor({ ...none, ...config }).protect();
  // Limits on the shape of what a client writes: waived for a router's entity fetches.
  const aliases = rules({ maxAliases: { n: LIMITS.maxAliases, exposeLimits: false } });
  const cost = rules({ costLimit: { maxCost: LIMITS.maxCost, ignoreIntrospection: true, exposeLimits: false } });
  // Limits for every document.
  const depth = rules({ maxDepth: { n: LIMITS.maxDepth, ignoreIntrospection: true, flattenFragments: true, exposeLimits: false } });
  const directives = rules({ maxDirectives: { n: LIMITS.maxDirectives, exposeLimits: false } });
  // "Did you mean …" names parts of the schema: hidden in production, helpful in development.
  const suggestions = rules({ blockFieldSuggestion: { enabled: production } });
  const all = [aliases, cost, depth, directives, suggestions];
  return {
    // armor's typings name @apollo/server's CommonJS build; the plugin objects are the same shape.
    plugins: all.flatMap((armor) => armor.plugins) as unknown as ApolloServerPlugin[],
    validationRules: [
      ...[...aliases.validationRules, ...cost.validationRules].map(forClientOperations),
      ...depth.validationRules,
      ...directives.validationRules,
      routerPlanBounds,
      singleMutationField,
    ],
    parseOptions: { maxTokens: LIMITS.maxTokens },
  };
}
