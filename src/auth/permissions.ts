import { allow, chain, deny, rule, shield } from "graphql-shield";
import { isUuid } from "../deel/profile-id.js";
import type { GatewayContext } from "../graphql/context.js";
import { badUserInput, forbidden, unauthenticated } from "../graphql/errors.js";
import { hasScope as callerHasScope, mayReachProfile, Scope } from "./caller.js";

/**
 * Who may do what (SPEC §4), as one map that mirrors the schema. Anything not named here is
 * denied (`fallbackRule: deny`).
 *
 * Each operation runs a chain, first failure wins:
 *   authenticated → input well-formed → scope → profile reach.
 * Input is checked before authorization so that a malformed id never travels further, and Deel is
 * never called for a denied or invalid request. Rules that read arguments or the parent use
 * `no_cache`: shield's `contextual` cache keys on the rule name only.
 */

const MAX_IDEMPOTENCY_KEY = 64;

const isAuthenticated = rule("isAuthenticated", { cache: "contextual" })(
  (_parent, _args, ctx: GatewayContext) =>
    ctx.caller !== null ? true : unauthenticated(ctx.authError?.message ?? "Authentication required"),
);

const scopeRules = new Map<Scope, ReturnType<ReturnType<typeof rule>>>();

/** One named rule per scope (shield refuses two rules with one name). */
function hasScope(scope: Scope) {
  const existing = scopeRules.get(scope);
  if (existing !== undefined) return existing;
  const created = rule(`hasScope:${scope}`, { cache: "contextual" })((_parent, _args, ctx: GatewayContext) =>
    ctx.caller !== null && callerHasScope(ctx.caller, scope) ? true : forbidden(`Not allowed: the ${scope} scope is required`),
  );
  scopeRules.set(scope, created);
  return created;
}

function profileIdError(profileId: unknown): Error | true {
  return typeof profileId === "string" && isUuid(profileId) ? true : badUserInput("profileId must be a UUID");
}

const validProfileIdArg = rule("validProfileIdArg", { cache: "no_cache" })(
  (_parent, args: { profileId?: unknown }) => profileIdError(args.profileId),
);

const validRevokeInput = rule("validRevokeInput", { cache: "no_cache" })(
  (_parent, args: { input?: { profileId?: unknown } }) => profileIdError(args.input?.profileId),
);

const validCreateInput = rule("validCreateInput", { cache: "no_cache" })(
  (_parent, args: { input?: { profileId?: unknown; idempotencyKey?: unknown } }) => {
    const key = args.input?.idempotencyKey;
    if (key !== undefined && key !== null) {
      if (typeof key !== "string" || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY) {
        return badUserInput(`idempotencyKey must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`);
      }
    }
    return profileIdError(args.input?.profileId);
  },
);

const validParentProfileId = rule("validParentProfileId", { cache: "no_cache" })(
  (parent: { profileId?: unknown }) => profileIdError(parent.profileId),
);

function reach(ctx: GatewayContext, profileId: unknown): true | Error {
  return ctx.caller !== null && typeof profileId === "string" && mayReachProfile(ctx.caller, profileId)
    ? true
    : forbidden("Not allowed: the caller may not act on this profile");
}

const mayReachArgProfile = rule("mayReachArgProfile", { cache: "no_cache" })(
  (_parent, args: { profileId?: unknown }, ctx: GatewayContext) => reach(ctx, args.profileId),
);

const mayReachInputProfile = rule("mayReachInputProfile", { cache: "no_cache" })(
  (_parent, args: { input?: { profileId?: unknown } }, ctx: GatewayContext) => reach(ctx, args.input?.profileId),
);

const mayReachParentProfile = rule("mayReachParentProfile", { cache: "no_cache" })(
  (parent: { profileId?: unknown }, _args, ctx: GatewayContext) => reach(ctx, parent.profileId),
);

/** The permission map, applied to the built subgraph schema with graphql-middleware. */
export const permissions = shield(
  {
    Query: {
      workerSession: chain(isAuthenticated, validProfileIdArg, hasScope(Scope.read), mayReachArgProfile),
      // Federation plumbing: composition reads _service; entity fetches go through _entities,
      // whose fields (Worker.session) carry the real rules.
      _service: allow,
      _entities: allow,
    },
    Mutation: {
      createWorkerSession: chain(isAuthenticated, validCreateInput, hasScope(Scope.create), mayReachInputProfile),
      revokeWorkerSession: chain(isAuthenticated, validRevokeInput, hasScope(Scope.revoke), mayReachInputProfile),
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
  },
  {
    fallbackRule: deny,
    fallbackError: () => forbidden(),
    // Resolver errors (Deel, ledger) pass to formatError, which translates or masks them.
    allowExternalErrors: true,
    debug: false,
  },
);
