import type { GraphQLError, GraphQLResolveInfo, GraphQLSchema } from "graphql";
import { applyMiddleware, type IMiddleware } from "graphql-middleware";
import { allow, chain, deny, rule, shield } from "graphql-shield";
import { isUuid } from "../deel/profile-id.js";
import type { GatewayContext } from "../graphql/context.js";
import { badUserInput, forbidden, gatewayError, unauthenticated } from "../graphql/errors.js";
import { hasScope as callerHasScope, mayReachProfile, Scope } from "./caller.js";

/**
 * Who may do what (SPEC §4), as one map that mirrors the schema. Anything not named here is
 * denied (`fallbackRule: deny`).
 *
 * Each operation runs a chain, first failure wins:
 *   authenticated → input well-formed → scope → profile reach → (mutations) caller quota.
 * Input is checked before authorization so that a malformed id never travels further, and Deel is
 * never called for a denied or invalid request. Rules that read arguments or the parent use
 * `no_cache`: shield's `contextual` cache keys on the rule name only.
 *
 * A refused mutation still gets its audit line (the service writes the line of every attempt that
 * passes these rules).
 */

const MAX_IDEMPOTENCY_KEY = 64;

type Args = { profileId?: unknown; input?: { profileId?: unknown; idempotencyKey?: unknown } };

/** Returns `error` for the field, writing the audit line when a mutation is refused. */
function refuse(ctx: GatewayContext, info: GraphQLResolveInfo, args: Args, error: GraphQLError): GraphQLError {
  if (info.parentType.name === "Mutation") {
    const action = info.fieldName === "createWorkerSession" ? "create" : "revoke";
    const profileId = args.input?.profileId;
    ctx.log.info(
      {
        audit: {
          action,
          sub: ctx.caller?.sub ?? null,
          profileId: typeof profileId === "string" ? profileId.slice(0, 64) : null,
          outcome: error.extensions.code,
          deelRequestId: null,
          requestId: ctx.requestId,
        },
      },
      `worker session ${action}: ${String(error.extensions.code)}`,
    );
  }
  return error;
}

const isAuthenticated = rule("isAuthenticated", { cache: "contextual" })(
  (_parent, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) =>
    ctx.caller !== null ? true : refuse(ctx, info, args, unauthenticated(ctx.authError?.message ?? "Authentication required")),
);

const scopeRules = new Map<Scope, ReturnType<ReturnType<typeof rule>>>();

/** One named rule per scope (shield refuses two rules with one name). */
function hasScope(scope: Scope) {
  const existing = scopeRules.get(scope);
  if (existing !== undefined) return existing;
  const created = rule(`hasScope:${scope}`, { cache: "contextual" })(
    (_parent, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) =>
      ctx.caller !== null && callerHasScope(ctx.caller, scope)
        ? true
        : refuse(ctx, info, args, forbidden(`Not allowed: the ${scope} scope is required`)),
  );
  scopeRules.set(scope, created);
  return created;
}

function validProfileId(profileId: unknown): boolean {
  return typeof profileId === "string" && isUuid(profileId);
}

const PROFILE_ID_ERROR = "profileId must be a UUID";

const validProfileIdArg = rule("validProfileIdArg", { cache: "no_cache" })(
  (_parent, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) =>
    validProfileId(args.profileId) ? true : refuse(ctx, info, args, badUserInput(PROFILE_ID_ERROR)),
);

const validRevokeInput = rule("validRevokeInput", { cache: "no_cache" })(
  (_parent, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) =>
    validProfileId(args.input?.profileId) ? true : refuse(ctx, info, args, badUserInput(PROFILE_ID_ERROR)),
);

const validCreateInput = rule("validCreateInput", { cache: "no_cache" })(
  (_parent, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) => {
    const key = args.input?.idempotencyKey;
    if (key !== undefined && key !== null && (typeof key !== "string" || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY)) {
      return refuse(ctx, info, args, badUserInput(`idempotencyKey must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`));
    }
    return validProfileId(args.input?.profileId) ? true : refuse(ctx, info, args, badUserInput(PROFILE_ID_ERROR));
  },
);

const validParentProfileId = rule("validParentProfileId", { cache: "no_cache" })(
  (parent: { profileId?: unknown }, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) =>
    validProfileId(parent.profileId) ? true : refuse(ctx, info, args, badUserInput(PROFILE_ID_ERROR)),
);

function reach(ctx: GatewayContext, info: GraphQLResolveInfo, args: Args, profileId: unknown): true | GraphQLError {
  return ctx.caller !== null && typeof profileId === "string" && mayReachProfile(ctx.caller, profileId)
    ? true
    : refuse(ctx, info, args, forbidden("Not allowed: the caller may not act on this profile"));
}

const mayReachArgProfile = rule("mayReachArgProfile", { cache: "no_cache" })(
  (_parent, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) => reach(ctx, info, args, args.profileId),
);

const mayReachInputProfile = rule("mayReachInputProfile", { cache: "no_cache" })(
  (_parent, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) => reach(ctx, info, args, args.input?.profileId),
);

const mayReachParentProfile = rule("mayReachParentProfile", { cache: "no_cache" })(
  (parent: { profileId?: unknown }, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) =>
    reach(ctx, info, args, parent.profileId),
);

/** CALLER_MUTATIONS_PER_MINUTE: counted only for mutations that passed every other rule. */
const withinCallerQuota = rule("withinCallerQuota", { cache: "no_cache" })(
  (_parent, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) => {
    const decision = ctx.quota.take(ctx.caller?.sub ?? "");
    if (decision.allowed) return true;
    return refuse(
      ctx,
      info,
      args,
      gatewayError("RATE_LIMITED", `Too many mutations from this caller; retry in ${decision.retryAfterSeconds} s`, {
        retryAfterSeconds: decision.retryAfterSeconds,
      }),
    );
  },
);

/** Who may do what: the rule tree, one entry per type of the schema that a caller can reach. */
const ruleTree = {
  Query: {
    workerSession: chain(isAuthenticated, validProfileIdArg, hasScope(Scope.read), mayReachArgProfile),
    // Federation plumbing: composition reads _service; entity fetches go through _entities,
    // whose fields (Worker.session) carry the real rules.
    _service: allow,
    _entities: allow,
  },
  Mutation: {
    createWorkerSession: chain(isAuthenticated, validCreateInput, hasScope(Scope.create), mayReachInputProfile, withinCallerQuota),
    revokeWorkerSession: chain(isAuthenticated, validRevokeInput, hasScope(Scope.revoke), mayReachInputProfile, withinCallerQuota),
  },
  Worker: {
    profileId: allow,
    session: chain(isAuthenticated, validParentProfileId, hasScope(Scope.read), mayReachParentProfile),
  },
  // Reached only through a field above that has already applied the rules for its profile.
  WorkerSession: allow,
  CreateWorkerSessionPayload: allow,
  RevokeWorkerSessionPayload: allow,
  _Service: allow,
};

/** The permission map as graphql-shield middleware. */
export const permissions = shield(ruleTree, {
  fallbackRule: deny,
  fallbackError: () => forbidden(),
  // Resolver errors (Deel, ledger) pass to formatError, which translates or masks them.
  allowExternalErrors: true,
  debug: false,
});

/**
 * Applies the permission map to a schema. Fields whose rule is the constant `allow` are left
 * unwrapped: shield would only call their resolver anyway, and wrapping costs a promise per field
 * on every response. Every other field, including any field the tree does not name (denied), keeps
 * shield's middleware.
 */
export function applyPermissions(schema: GraphQLSchema): GraphQLSchema {
  const fieldMap = permissions.generate(schema) as Record<string, Record<string, unknown>>;
  for (const [typeName, rules] of Object.entries(ruleTree)) {
    if (rules === allow) {
      delete fieldMap[typeName];
      continue;
    }
    const fields = fieldMap[typeName];
    if (fields === undefined) continue;
    for (const [fieldName, fieldRule] of Object.entries(rules as Record<string, unknown>)) {
      if (fieldRule === allow) delete fields[fieldName];
    }
  }
  return applyMiddleware(schema, fieldMap as IMiddleware);
}
