import { Kind, type DocumentNode, type FragmentDefinitionNode, type SelectionNode } from "graphql";

/**
 * The root fields only a supergraph router asks a subgraph for: `_entities` (entity fetches of a
 * query plan) and `_service` (the SDL composition reads). `buildSubgraphSchema` adds both. This is
 * the one list of them: the request limits tell a router's fetch from a client's operation by it,
 * and a trusted document a direct client may run must select neither (README: Trusted documents).
 */
export const ROUTER_ONLY_ROOT_FIELDS: ReadonlySet<string> = new Set(["_entities", "_service"]);

/** True for `_entities` and `_service`. */
export function isRouterOnlyRootField(name: string): boolean {
  return ROUTER_ONLY_ROOT_FIELDS.has(name);
}

/**
 * The router-only root fields any operation of `document` selects, each named once, in the order
 * first met. Inline fragments and fragment spreads at the root are followed, so wrapping
 * `_entities` in `... on Query { }` or a named fragment does not hide it.
 */
export function routerOnlyFieldsSelected(document: DocumentNode): string[] {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const found = new Set<string>();
  const walk = (selections: readonly SelectionNode[], seen: Set<string>) => {
    for (const selection of selections) {
      if (selection.kind === Kind.FIELD) {
        if (isRouterOnlyRootField(selection.name.value)) found.add(selection.name.value);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet.selections, seen);
      } else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment !== undefined) walk(fragment.selectionSet.selections, seen);
      }
    }
  };
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) walk(definition.selectionSet.selections, new Set());
  }
  return [...found];
}
