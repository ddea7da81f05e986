import { GraphQLError, isObjectType, type GraphQLFieldResolver, type GraphQLResolveInfo, type GraphQLSchema } from "graphql";
import { applyMiddleware, type IMiddleware } from "graphql-middleware";
import { assertEveryMutationAudited, auditActionOf, auditEdgeOutcome, auditRefusal, reportedByService, type AuditAction, type AuditSource } from "./audit.js";
import type { GatewayContext } from "./context.js";
import { INPUT_STEPS, type InputStep } from "./edge-input.js";
import type { ErrorCode } from "./failures.js";
import { gatewayError } from "./errors.js";
import { isAlwaysAllowed, permissions } from "./permissions.js";
import { ENTITY_TYPES } from "./entity-types.js";

/**
 * The edge pipeline: what happens to a guarded field before its resolver runs, as one
 * graphql-middleware pass per field that runs its steps in sequence, first failure wins:
 *
 *   1. authenticated — the permission map's first rule. An anonymous request is not parsed at all:
 *      the map refuses it (UNAUTHENTICATED) before its input is read;
 *   2. input well-formed — the field's input step (edge-input.ts), whose parsed values replace the
 *      field's arguments from here on (BAD_USER_INPUT);
 *   3. scope, 4. profile reach — the permission map (permissions.ts), over the parsed values (FORBIDDEN);
 *   5. caller quota — mutations only, counted once every step above passed (RATE_LIMITED);
 *   then the resolver, with the parsed arguments.
 *
 * A mutation refused by any step gets its audit line here (audit.ts). Deel is never called for a
 * refused request: nothing past a refusal runs. Fields whose rule is the constant `allow` are left
 * unwrapped (shield would only call their resolver, and a wrapper costs a promise per field on every
 * response); every other field, including one the map does not name (denied), is wrapped.
 */

type FieldMiddleware = (resolve: GraphQLFieldResolver<unknown, GatewayContext>, parent: unknown, args: Record<string, unknown>, ctx: GatewayContext, info: GraphQLResolveInfo) => Promise<unknown>;

/** What the permission map's middleware answers when it lets a field through (it calls this in place of the resolver). */
const ADMITTED = Symbol("admitted");
const admit = () => ADMITTED;

/** The caller's `sub`, or null. */
function subOf(ctx: GatewayContext): string | null {
  return ctx.auth.kind === "verified" ? ctx.auth.caller.sub : null;
}

function auditSource(ctx: GatewayContext): AuditSource {
  return { log: ctx.log, requestId: ctx.requestId, sub: subOf(ctx) };
}

/** The step that counts a verified caller's mutation against CALLER_MUTATIONS_PER_MINUTE. */
function callerQuota(ctx: GatewayContext): GraphQLError | undefined {
  const decision = ctx.quota.take(subOf(ctx) ?? "");
  if (decision.allowed) return undefined;
  return gatewayError("RATE_LIMITED", `Over the caller mutation limit: this caller has sent its mutations for the minute; CALLER_MUTATIONS_PER_MINUTE allows ${ctx.quota.perMinute} a minute; retry in ${decision.retryAfterSeconds} s`, {
    retryAfterSeconds: decision.retryAfterSeconds,
  });
}

/** The steps of one field, fixed when the schema is built. */
interface FieldSteps {
  /** The permission map's middleware for the field. */
  readonly access: FieldMiddleware;
  readonly input: InputStep | undefined;
  /** Mutations only: refusals and (for actions the service does not report) outcomes are audited, and the quota applies. */
  readonly audit: AuditAction | undefined;
  /** A field of an entity type: resolved once per representation, so its refusals are grouped. */
  readonly entity: boolean;
}

/**
 * Refusals of one entity field, per request, grouped by path shape (`_entities.*.session`): the
 * first answers with its error, every later one at the same shape answers null and counts in that
 * error's message. A fetch of 500 entities the caller may not read is one error, not 500.
 */
const entityRefusals = new WeakMap<GatewayContext, Map<string, { error: GraphQLError; message: string; count: number }>>();

function pathShape(info: GraphQLResolveInfo): string {
  const keys: string[] = [];
  for (let at: GraphQLResolveInfo["path"] | undefined = info.path; at !== undefined; at = at.prev) keys.push(typeof at.key === "number" ? "*" : at.key);
  return keys.reverse().join(".");
}

/** The error of the first refusal at this field's path shape, or null (counted in it) for a later one. */
function groupedRefusal(ctx: GatewayContext, info: GraphQLResolveInfo, error: GraphQLError): GraphQLError | null {
  let byShape = entityRefusals.get(ctx);
  if (byShape === undefined) {
    byShape = new Map();
    entityRefusals.set(ctx, byShape);
  }
  const shape = pathShape(info);
  const first = byShape.get(shape);
  if (first === undefined) {
    byShape.set(shape, { error, message: error.message, count: 1 });
    return error;
  }
  first.count += 1;
  first.error.message = `${first.message} (refused for ${first.count} entities at ${shape}; each of their ${info.fieldName} is null)`;
  return null;
}

function edgeField(steps: FieldSteps): FieldMiddleware {
  const { access, input, audit, entity } = steps;
  const refuse = (ctx: GatewayContext, args: Record<string, unknown>, error: GraphQLError, info: GraphQLResolveInfo): GraphQLError | null => {
    if (audit !== undefined) {
      const raw = args.input as { profileId?: unknown } | undefined;
      auditRefusal(auditSource(ctx), audit, raw?.profileId, error.extensions.code as ErrorCode);
    }
    return entity ? groupedRefusal(ctx, info, error) : error;
  };
  return async (resolve, parent, args, ctx, info) => {
    let parsed: Record<string, unknown> = args;
    if (input !== undefined && ctx.auth.kind === "verified") {
      const outcome = input(args, parent, ctx);
      if (outcome instanceof GraphQLError) return refuse(ctx, args, outcome, info);
      parsed = outcome;
    }
    const verdict = await access(admit, parent, parsed, ctx, info);
    if (verdict !== ADMITTED) return refuse(ctx, args, verdict instanceof GraphQLError ? verdict : gatewayError("FORBIDDEN", "Not allowed"), info);
    if (input !== undefined && ctx.auth.kind !== "verified") {
      // Every guarded rule starts with `authenticated`; a map that let an anonymous caller through
      // is a bug, and its raw input must not reach the resolver.
      throw new Error(`the permission map admitted an anonymous caller to ${info.parentType.name}.${info.fieldName}`);
    }
    if (audit === undefined) return resolve(parent, parsed, ctx, info);
    const overQuota = callerQuota(ctx);
    if (overQuota !== undefined) return refuse(ctx, args, overQuota, info);
    if (reportedByService(audit)) return resolve(parent, parsed, ctx, info);
    try {
      const result = await resolve(parent, parsed, ctx, info);
      auditEdgeOutcome(auditSource(ctx), audit);
      return result;
    } catch (error) {
      auditEdgeOutcome(auditSource(ctx), audit, error);
      throw error;
    }
  };
}

/**
 * Applies the edge pipeline to a schema: one middleware per guarded field. Fails (at start-up)
 * when a Mutation field has no audit action, or a field has an input step but no type to match.
 */
export function applyEdge(schema: GraphQLSchema): GraphQLSchema {
  assertEveryMutationAudited(schema);
  // Shield answers a plain rule as a middleware function, and a logic rule (`deny`, the fallback)
  // as `{ fragments, resolve }`; none of the map's rules declares a fragment.
  const shieldMap = permissions.generate(schema) as Record<string, Record<string, FieldMiddleware | { resolve: FieldMiddleware }>>;
  const mutationType = schema.getMutationType()?.name;
  const fieldMap: Record<string, Record<string, FieldMiddleware>> = {};
  for (const [typeName, stepsOf] of Object.entries(INPUT_STEPS)) {
    const type = schema.getType(typeName);
    for (const fieldName of Object.keys(stepsOf)) {
      if (!isObjectType(type) || type.getFields()[fieldName] === undefined) throw new Error(`edge-input.ts parses ${typeName}.${fieldName}, which the schema lacks`);
    }
  }
  for (const [typeName, fields] of Object.entries(shieldMap)) {
    for (const [fieldName, generated] of Object.entries(fields)) {
      if (isAlwaysAllowed(typeName, fieldName)) continue;
      (fieldMap[typeName] ??= {})[fieldName] = edgeField({
        access: typeof generated === "function" ? generated : generated.resolve,
        input: INPUT_STEPS[typeName]?.[fieldName],
        audit: typeName === mutationType ? auditActionOf(fieldName) : undefined,
        entity: ENTITY_TYPES.includes(typeName),
      });
    }
  }
  return applyMiddleware(schema, fieldMap as IMiddleware);
}
