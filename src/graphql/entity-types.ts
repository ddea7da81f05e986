/** The federation entity types this subgraph resolves through `_entities` (each has a `@key`). */
export const ENTITY_TYPES: readonly string[] = ["Worker"];
