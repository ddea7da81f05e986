import type { ApolloServerPlugin } from "@apollo/server";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import { GraphQLError, Kind, OperationTypeNode, type DocumentNode, type SelectionNode, type ValidationContext, type ValidationRule } from "graphql";
import { ROUTER_ONLY_ROOT_FIELDS } from "./router-fields.js";

/** The limits on one GraphQL request, each changed by its own setting (README: Errors, "Request limits"). */
export interface RequestLimitSettings {
  /** `GRAPHQL_MAX_ALIASES`: aliases in a client operation (for a router's entity fetch: below each `_entities`). */
  readonly maxAliases: number;
  /** `GRAPHQL_MAX_DEPTH`: nesting of fields, the root's fields at depth 0, fragments flattened. */
  readonly maxDepth: number;
  /** `GRAPHQL_MAX_COST`: graphql-armor's cost of a client operation (objects 2, scalars 1, × depth). */
  readonly maxCost: number;
  /** `GRAPHQL_MAX_TOKENS`: lexical tokens of the document; more fails to parse. */
  readonly maxTokens: number;
  /** `GRAPHQL_MAX_DIRECTIVES`: directives in an operation. */
  readonly maxDirectives: number;
  /** `HTTP_MAX_BODY_BYTES`: bytes of a request body; more is refused with 413 before it is read in full. */
  readonly maxBodyBytes: number;
}

/**
 * The default limits, tuned to this small schema. The deepest real operation is an entity fetch
 * (`_entities → Worker → session → field`, depth 4); a client never needs aliases to use it;
 * representations travel as variables, so even a 100-entity fetch is a few dozen tokens.
 * The costliest client operation is a revocation job with a page of its history events, every field
 * selected (armor's cost: about 380).
 * Every refusal names its limit, the value and the setting that changes it (`limitMessage`).
 */
export const LIMITS = {
  maxDepth: 6,
  maxAliases: 5,
  maxCost: 500,
  maxTokens: 1000,
  maxDirectives: 10,
  maxBodyBytes: 100 * 1024,
} as const satisfies RequestLimitSettings;

/** One limit as its refusal names it. */
export interface LimitName {
  /** "alias", "depth": read as "the alias limit". */
  readonly name: string;
  /** What is counted: "aliases", "levels of nesting". */
  readonly unit: string;
  /** The setting that changes it. */
  readonly setting: string;
  /** What holds the counted things: "the operation", "the request body". */
  readonly subject?: string;
}

/**
 * A limit's refusal as callers read it: which limit, what the request had, and the value and the
 * setting that changes it ("Over the alias limit: the operation has 8 aliases; GRAPHQL_MAX_ALIASES
 * allows 5"). Without `found` (a check that stops counting past the limit) it says "more than".
 */
export function limitMessage(limit: LimitName, value: number, found?: number): string {
  const measured = found === undefined ? `more than ${value}` : String(found);
  return `Over the ${limit.name} limit: ${limit.subject ?? "the operation"} has ${measured} ${limit.unit}; ${limit.setting} allows ${value}`;
}

/** The limits a refusal names (README: Errors, "Request limits"). */
export const LIMIT_NAMES = {
  aliases: { name: "alias", unit: "aliases", setting: "GRAPHQL_MAX_ALIASES" },
  entityAliases: { name: "alias", unit: "aliases below one _entities field", setting: "GRAPHQL_MAX_ALIASES", subject: "an entity fetch" },
  depth: { name: "depth", unit: "levels of nesting", setting: "GRAPHQL_MAX_DEPTH" },
  cost: { name: "cost", unit: "cost points", setting: "GRAPHQL_MAX_COST" },
  directives: { name: "directive", unit: "directives", setting: "GRAPHQL_MAX_DIRECTIVES" },
  tokens: { name: "token", unit: "tokens", setting: "GRAPHQL_MAX_TOKENS", subject: "the document" },
  body: { name: "body size", unit: "bytes", setting: "HTTP_MAX_BODY_BYTES", subject: "the request body" },
} as const satisfies Record<string, LimitName>;

/** The count graphql-armor found, from its own message (`…exceeded, found 8.`), when it says it. */
function armorFound(error: GraphQLError): number | undefined {
  const match = /found (\d+)\.?$/.exec(error.message);
  return match === null ? undefined : Number(match[1]);
}

/**
 * graphql-armor's options for one limit that refuse with `limitMessage` instead of armor's own
 * "Syntax Error: Query validation error.": the rule reports (not throws) the error, so that it is an
 * ordinary GRAPHQL_VALIDATION_FAILED beside any other validation error.
 */
function armorRefusal(limit: LimitName, value: number) {
  return {
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        context?.reportError(new GraphQLError(limitMessage(limit, value, armorFound(error))));
      },
    ],
  };
}

/** Refuses an operation that names more than one mutation field: each Deel call gets its own request. */
export const singleMutationField: ValidationRule = (context: ValidationContext) => ({
  OperationDefinition(node) {
    if (node.operation !== OperationTypeNode.MUTATION) return;
    let fields = 0;
    const count = (selections: readonly { kind: Kind }[], seen: Set<string>) => {
      for (const selection of selections as ReadonlyArray<import("graphql").SelectionNode>) {
        // `__typename` asks for no mutation (codegen's and Apollo's document transforms add it).
        if (selection.kind === Kind.FIELD) fields += selection.name.value === "__typename" ? 0 : 1;
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

/** Root fields a router's query plan fetches from a subgraph (entity fetches and the SDL), and `__typename`. */
const ROUTER_FIELDS: ReadonlySet<string> = new Set([...ROUTER_ONLY_ROOT_FIELDS, "__typename"]);

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
export const routerPlanBounds = (maxAliases: number): ValidationRule => (context: ValidationContext) => {
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
            `A router's fetch may merge at most ${MAX_MERGED_ENTITY_FETCHES} _entities fields and one _service (this one has ${entities} and ${services}); this bound is fixed, and the token limit (GRAPHQL_MAX_TOKENS) bounds it too`,
            { nodes: [node] },
          ),
        );
      }
      if (mostAliases > maxAliases) {
        context.reportError(new GraphQLError(limitMessage(LIMIT_NAMES.entityAliases, maxAliases, mostAliases), { nodes: [node] }));
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
 * GraphQL server answers it (errors.ts words it with its setting). Alias, depth and cost limits
 * are waived for router-shaped documents.
 */
export function requestLimits(production: boolean, limits: RequestLimitSettings = LIMITS): RequestLimits {
  const off = { enabled: false } as const;
  const none = { maxDepth: off, maxAliases: off, costLimit: off, maxDirectives: off, maxTokens: off, blockFieldSuggestion: off };
  // One armor instance per limit, so that each rule is known by what it limits.
  const rules = (config: ConstructorParameters<typeof ApolloArmor>[0]) => new ApolloArmor({ ...none, ...config }).protect();
  // Limits on the shape of what a client writes: waived for a router's entity fetches.
  const aliases = rules({ maxAliases: { n: limits.maxAliases, ...armorRefusal(LIMIT_NAMES.aliases, limits.maxAliases) } });
  const cost = rules({ costLimit: { maxCost: limits.maxCost, ignoreIntrospection: true, ...armorRefusal(LIMIT_NAMES.cost, limits.maxCost) } });
  // Limits for every document.
  const depth = rules({ maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true, ...armorRefusal(LIMIT_NAMES.depth, limits.maxDepth) } });
  const directives = rules({ maxDirectives: { n: limits.maxDirectives, ...armorRefusal(LIMIT_NAMES.directives, limits.maxDirectives) } });
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
      routerPlanBounds(limits.maxAliases),
      singleMutationField,
    ],
    parseOptions: { maxTokens: limits.maxTokens },
  };
}
