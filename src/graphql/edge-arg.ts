import { createParameterDecorator, type ArgOptions } from "type-graphql";
import type { GatewayContext } from "./context.js";

/** type-graphql's own parameter decorator type. */
type EdgeParameterDecorator = ReturnType<typeof createParameterDecorator>;
/** type-graphql's `() => Type` (its own name for it is not exported). */
type TypeFunc = NonNullable<NonNullable<Parameters<typeof createParameterDecorator>[1]>["arg"]>["typeFunc"];

/**
 * Declares a GraphQL argument exactly as `@Arg` does (same SDL), but hands the resolver the value
 * the edge pipeline parsed for it (edge-input.ts: a `ProfileId`, a create's parsed input …) rather
 * than the raw one. The edge replaces a guarded field's arguments with their parsed form before the
 * resolver runs, so the parameter's type is the parsed one.
 */
export function EdgeArg(name: string, typeFunc: TypeFunc, options: ArgOptions): EdgeParameterDecorator {
  return createParameterDecorator<GatewayContext>(({ args }) => (args as Record<string, unknown>)[name], { arg: { name, typeFunc, options } });
}

/**
 * A value the edge parsed for a field that takes no GraphQL argument of that name (`Worker.session`
 * gets its entity's parsed key as `profileId`).
 */
export function EdgeValue(name: string): EdgeParameterDecorator {
  return createParameterDecorator<GatewayContext>(({ args }) => (args as Record<string, unknown>)[name]);
}
