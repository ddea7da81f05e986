import type { GraphQLError, GraphQLResolveInfo, GraphQLSchema } from "graphql";
import { applyMiddleware, type IMiddleware } from "graphql-middleware";
import { allow, deny, rule, shield } from "graphql-shield";
import { hasScope as callerHasScope, mayReachProfile, Scope, type Caller } from "../auth/caller.js";
import { isUuid } from "../base/profile-id.js";
import type { ErrorCode } from "./failures.js";
import { writeAudit } from "./audit.js";
import { checkMagicLinkRedirects } from "../base/redirects.js";
import type { GatewayContext } from "./context.js";
import { badUserInput, forbidden, gatewayError, unauthenticated } from "./errors.js";

/**
 * Who may do what (README: Callers and authorization), as one map that mirrors the schema. Anything not named here is
 * denied (`fallbackRule: deny`).
 *
 * Each guarded field runs its checks in order, first failure wins:
 *   authenticated → input well-formed → scope → profile reach → (mutations) caller quota.
 * Input is checked before authorization so that a malformed id never travels further, and Deel is
 * never called for a denied or invalid request. Rules read arguments or the parent, so they use
 * `no_cache`: shield's `contextual` cache keys on the rule name only.
 *
 * A refused mutation still gets its audit line (the service writes the line of every attempt that
 * passes these rules).
 */

const MAX_IDEMPOTENCY_KEY = 64;

type Args = {
  profileId?: unknown;
  id?: unknown;
  input?: {
    profileId?: unknown;
    idempotencyKey?: unknown;
    redirectPath?: unknown;
    onSuccessRedirectUrl?: unknown;
    createdBy?: unknown;
    profileIds?: unknown;
  };
};

/** The verified caller of the request, or null. */
function callerOf(ctx: GatewayContext): Caller | null {
  return ctx.auth.kind === "verified" ? ctx.auth.caller : null;
}

/** Returns `error` for the field, writing the audit line when a mutation is refused. */
function refuse(ctx: GatewayContext, info: GraphQLResolveInfo, args: Args, error: GraphQLError): GraphQLError {
  if (info.parentType.name === "Mutation") {
    const profileId = args.input?.profileId;
    writeAudit(ctx.log, {
      action:
        info.fieldName === "createWorkerMagicLink"
          ? "magic_link"
          : info.fieldName === "createWorkerSession"
            ? "create"
            : info.fieldName === "revokeWorkerSessions"
              ? "revoke_job"
              : "revoke",
      sub: callerOf(ctx)?.sub ?? null,
      profileId: typeof profileId === "string" ? profileId : null,
      outcome: error.extensions.code as ErrorCode,
      deelRequestId: undefined,
      requestId: ctx.requestId,
    });
  }
  return error;
}

/** One step of a rule: true to go on, or the error the field answers with. */
type Check = (parent: { profileId?: unknown }, args: Args, ctx: GatewayContext) => true | GraphQLError;

/**
 * One shield rule that runs `checks` in order, first failure wins. The checks are plain functions,
 * so a guarded field costs one rule evaluation however many steps it has (this matters for an
 * `_entities` fetch of 100 workers); a refused mutation gets its audit line here.
 */
function guard(name: string, ...checks: Check[]) {
  return rule(name, { cache: "no_cache" })((parent: { profileId?: unknown }, args: Args, ctx: GatewayContext, info: GraphQLResolveInfo) => {
    for (const check of checks) {
      const outcome = check(parent, args, ctx);
      if (outcome !== true) return refuse(ctx, info, args, outcome);
    }
    return true;
  });
}

const authenticated: Check = (_parent, _args, ctx) => (ctx.auth.kind === "verified" ? true : unauthenticated(ctx.auth.error.message));

function scope(required: Scope): Check {
  return (_parent, _args, ctx) =>
    ctx.auth.kind === "verified" && callerHasScope(ctx.auth.caller, required) ? true : forbidden(`Not allowed: the ${required} scope is required`);
}

const PROFILE_ID_ERROR = "profileId must be a UUID";

function uuid(profileId: unknown): true | GraphQLError {
  return typeof profileId === "string" && isUuid(profileId) ? true : badUserInput(PROFILE_ID_ERROR);
}

const profileIdArg: Check = (_parent, args) => uuid(args.profileId);
const revokeInput: Check = (_parent, args) => uuid(args.input?.profileId);
const parentProfileId: Check = (parent) => uuid(parent.profileId);
const createInput: Check = (_parent, args) => {
  const key = args.input?.idempotencyKey;
  if (key !== undefined && key !== null && (typeof key !== "string" || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY)) {
    return badUserInput(`idempotencyKey must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`);
  }
  return uuid(args.input?.profileId);
};
/** A create's input, plus where the link may lead (src/sessions/redirects.ts). */
const magicLinkInput: Check = (parent, args, ctx) => {
  const created = createInput(parent, args, ctx);
  if (created !== true) return created;
  // The one validator; the resolver forwards the values it normalizes.
  const redirects = checkMagicLinkRedirects(args.input, ctx.magicLinkRedirectOrigins ?? []);
  return redirects.ok ? true : badUserInput(redirects.problem);
};

/** Most profile ids one revocation job may name: 2,000 UUIDs fit the 100 kB request body limit. */
export const MAX_REVOCATION_PROFILE_IDS = 2_000;
const MAX_CREATED_BY = 256;

/** A revocation job's filters: at least one; a non-empty createdBy; profile ids all UUIDs, not too many. */
const revokeSessionsInput: Check = (_parent, args) => {
  const createdBy = args.input?.createdBy;
  const profileIds = args.input?.profileIds;
  const hasCreatedBy = createdBy !== undefined && createdBy !== null;
  const hasProfileIds = Array.isArray(profileIds) && profileIds.length > 0;
  if (hasCreatedBy && (typeof createdBy !== "string" || createdBy.length === 0 || createdBy.length > MAX_CREATED_BY)) {
    return badUserInput(`createdBy must be 1 to ${MAX_CREATED_BY} characters`);
  }
  if (!hasCreatedBy && !hasProfileIds) return badUserInput("Give at least one filter: createdBy, or a non-empty profileIds");
  if (Array.isArray(profileIds)) {
    if (profileIds.length > MAX_REVOCATION_PROFILE_IDS) return badUserInput(`profileIds may name at most ${MAX_REVOCATION_PROFILE_IDS} profiles`);
    if (!profileIds.every((id) => typeof id === "string" && isUuid(id))) return badUserInput("profileIds must all be UUIDs");
  }
  return true;
};
const jobIdArg: Check = (_parent, args) => (typeof args.id === "string" && isUuid(args.id) ? true : badUserInput("id must be a revocation job id (a UUID)"));

function reach(ctx: GatewayContext, profileId: unknown): true | GraphQLError {
  return ctx.auth.kind === "verified" && typeof profileId === "string" && mayReachProfile(ctx.auth.caller, profileId)
    ? true
    : forbidden("Not allowed: the caller may not act on this profile");
}

const reachArg: Check = (_parent, args, ctx) => reach(ctx, args.profileId);
const reachInput: Check = (_parent, args, ctx) => reach(ctx, args.input?.profileId);
const reachParent: Check = (parent, _args, ctx) => reach(ctx, parent.profileId);

/** CALLER_MUTATIONS_PER_MINUTE: counted only for mutations that passed every other check. */
const callerQuota: Check = (_parent, _args, ctx) => {
  const decision = ctx.quota.take(callerOf(ctx)?.sub ?? "");
  if (decision.allowed) return true;
  return gatewayError("RATE_LIMITED", `Too many mutations from this caller; retry in ${decision.retryAfterSeconds} s`, {
    retryAfterSeconds: decision.retryAfterSeconds,
  });
};

/** `allow` for each named field of a type; its other fields fall to the deny fallback. */
function allowed<const T extends string>(...fields: T[]): Record<T, typeof allow> {
  return Object.fromEntries(fields.map((field) => [field, allow])) as Record<T, typeof allow>;
}

/** Who may do what: the rule tree, one entry per type of the schema that a caller can reach. */
const ruleTree = {
  Query: {
    workerSession: guard("readSession", authenticated, profileIdArg, scope(Scope.read), reachArg),
    // The kill switch acts on any profile: it takes the revoke scope and all_profiles.
    revocationJob: guard("readRevocationJob", authenticated, jobIdArg, scope(Scope.revoke), scope(Scope.allProfiles)),
    // Federation plumbing: composition reads _service; entity fetches go through _entities,
    // whose fields (Worker.session) carry the real rules.
    _service: allow,
    _entities: allow,
  },
  Mutation: {
    createWorkerSession: guard("createSession", authenticated, createInput, scope(Scope.create), reachInput, callerQuota),
    revokeWorkerSession: guard("revokeSession", authenticated, revokeInput, scope(Scope.revoke), reachInput, callerQuota),
    createWorkerMagicLink: guard("createMagicLink", authenticated, magicLinkInput, scope(Scope.magicLink), reachInput, callerQuota),
    revokeWorkerSessions: guard("revokeSessionsInBulk", authenticated, revokeSessionsInput, scope(Scope.revoke), scope(Scope.allProfiles), callerQuota),
  },
  Worker: {
    profileId: allow,
    session: guard("readWorkerSession", authenticated, parentProfileId, scope(Scope.read), reachParent),
  },
  // Reached only through a field above that has already applied the rules for its profile. Each
  // field is named: a field added later is denied until it is given a rule here.
  WorkerSession: allowed("id", "profileId", "status", "createdAt", "expiresAt", "revokedAt", "createdBy", "revokedBy"),
  // The session a caller just minted (it is its createdBy): no read scope needed to see it.
  CreateWorkerSessionPayload: allowed("token", "session"),
  CreateWorkerMagicLinkPayload: allowed("magicLink", "expiresAt", "session"),
  // Reached only through revokeWorkerSessions / revocationJob, which have applied their rules.
  RevocationJob: allowed("id", "status", "total", "revoked", "failed", "startedAt", "finishedAt", "requestedBy", "createdBy", "onlyActive", "failureReason"),
  RevokeWorkerSessionPayload: {
    profileId: allow,
    revokedAt: allow,
    // The revoke scope lets a caller end a session, not read who minted it or when: the ledger's
    // record follows the read rule, and the revoke itself has already happened.
    session: guard("readRevokedSession", authenticated, scope(Scope.read), reachParent),
  },
  _Service: allowed("sdl"),
};

/** Every `Type.field` the map names (tests check that the schema has no field without a rule). */
export function permissionRuleNames(): Set<string> {
  const names = new Set<string>();
  for (const [typeName, rules] of Object.entries(ruleTree)) for (const field of Object.keys(rules)) names.add(`${typeName}.${field}`);
  return names;
}

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
    const fields = fieldMap[typeName];
    if (fields === undefined) continue;
    for (const [fieldName, fieldRule] of Object.entries(rules as Record<string, unknown>)) {
      if (fieldRule === allow) delete fields[fieldName];
    }
  }
  return applyMiddleware(schema, fieldMap as IMiddleware);
}
