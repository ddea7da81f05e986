import { isObjectType, type GraphQLError, type GraphQLSchema } from "graphql";
import { allow, deny, rule, shield } from "graphql-shield";
import { hasScope as callerHasScope, mayReachProfile, Scope } from "../auth/caller.js";
import type { ProfileId } from "../base/profile-id.js";
import type { GatewayContext } from "./context.js";
import { forbidden, unauthenticated } from "./errors.js";

/**
 * Who may do what (README: Callers and authorization), as one map that mirrors the schema. Anything
 * not named here is denied (`fallbackRule: deny`).
 *
 * The map decides only who may do what: a verified caller, its scopes, and which profiles it may
 * reach. It reads values the edge has already parsed (edge-input.ts): a field's arguments arrive
 * here as `ProfileId`s and the like, never as raw input. Parsing, the caller quota and audit lines
 * are the edge pipeline's other steps (edge.ts), which runs, first failure wins:
 *   authenticated → input well-formed → scope → profile reach → (mutations) caller quota.
 * Rules read arguments or the parent, so they use `no_cache`: shield's `contextual` cache keys on
 * the rule name only.
 */

/** A parent that carries a parsed profile id (the revoke's answer). */
type Parent = { profileId?: ProfileId };
/** A field's arguments as the edge parsed them (edge-input.ts): a `profileId`, or an `input` holding one. */
type ParsedArgs = { profileId?: ProfileId; input?: { profileId?: ProfileId } };

/** One step of a rule: true to go on, or the error the field answers with. */
type Check = (parent: Parent, args: ParsedArgs, ctx: GatewayContext) => true | GraphQLError;

/**
 * One shield rule that runs `checks` in order, first failure wins. The checks are plain functions,
 * so a guarded field costs one rule evaluation however many steps it has (this matters for an
 * `_entities` fetch of 500 workers).
 */
function may(name: string, ...checks: Check[]) {
  return rule(name, { cache: "no_cache" })((parent: Parent, args: ParsedArgs, ctx: GatewayContext) => {
    for (const check of checks) {
      const outcome = check(parent, args, ctx);
      if (outcome !== true) return outcome;
    }
    return true;
  });
}

const authenticated: Check = (_parent, _args, ctx) => (ctx.auth.kind === "verified" ? true : unauthenticated(ctx.auth.error.message));

function scope(required: Scope): Check {
  return (_parent, _args, ctx) =>
    ctx.auth.kind === "verified" && callerHasScope(ctx.auth.caller, required) ? true : forbidden(`Not allowed: the ${required} scope is required`);
}

function reach(ctx: GatewayContext, profileId: ProfileId | undefined): true | GraphQLError {
  return ctx.auth.kind === "verified" && profileId !== undefined && mayReachProfile(ctx.auth.caller, profileId)
    ? true
    : forbidden("Not allowed: the caller may not act on this profile");
}

/** The profile named by the field's (parsed) `profileId` argument; for `Worker.session`, the entity's key. */
const reachArg: Check = (_parent, args, ctx) => reach(ctx, args.profileId);
/** The profile named by the mutation's (parsed) input. */
const reachInput: Check = (_parent, args, ctx) => reach(ctx, args.input?.profileId);
/** The profile of the parent, an answer the service made (its `profileId` is a `ProfileId`). */
const reachParent: Check = (parent, _args, ctx) => reach(ctx, parent.profileId);

/** `allow` for each named field of a type; its other fields fall to the deny fallback. */
function allowed<const T extends string>(...fields: T[]): Record<T, typeof allow> {
  return Object.fromEntries(fields.map((field) => [field, allow])) as Record<T, typeof allow>;
}

/** Who may do what: the rule tree, one entry per type of the schema that a caller can reach. */
const ruleTree = {
  Query: {
    workerSession: may("readSession", authenticated, scope(Scope.read), reachArg),
    // The kill switch acts on any profile: it takes the revoke scope and all_profiles.
    revocationJob: may("readRevocationJob", authenticated, scope(Scope.revoke), scope(Scope.allProfiles)),
    // The history says who could act as a worker: the audit scope, on a profile the caller may reach.
    workerSessionHistory: may("readSessionHistory", authenticated, scope(Scope.audit), reachArg),
    // Federation plumbing: composition reads _service; entity fetches go through _entities,
    // whose fields (Worker.session) carry the real rules.
    _service: allow,
    _entities: allow,
  },
  Mutation: {
    createWorkerSession: may("createSession", authenticated, scope(Scope.create), reachInput),
    revokeWorkerSession: may("revokeSession", authenticated, scope(Scope.revoke), reachInput),
    createWorkerMagicLink: may("createMagicLink", authenticated, scope(Scope.magicLink), reachInput),
    revokeWorkerSessions: may("revokeSessionsInBulk", authenticated, scope(Scope.revoke), scope(Scope.allProfiles)),
  },
  Worker: {
    profileId: allow,
    // The edge hands the entity's parsed key on as the field's `profileId`.
    session: may("readWorkerSession", authenticated, scope(Scope.read), reachArg),
    sessionHistory: may("readWorkerSessionHistory", authenticated, scope(Scope.audit), reachArg),
  },
  // Reached only through a field above that has already applied the rules for its profile. Each
  // field is named: a field added later is denied until it is given a rule here.
  WorkerSession: allowed("id", "profileId", "status", "createdAt", "expiresAt", "revokedAt", "createdBy", "revokedBy"),
  // The session a caller just minted (it is its createdBy): no read scope needed to see it.
  CreateWorkerSessionPayload: allowed("token", "session"),
  CreateWorkerMagicLinkPayload: allowed("magicLink", "expiresAt", "session"),
  // Reached only through revokeWorkerSessions / revocationJob, which have applied their rules.
  RevocationJob: {
    ...allowed("id", "status", "total", "revoked", "failed", "startedAt", "finishedAt", "requestedBy", "createdBy", "onlyActive", "failureReason"),
    // A job's events span its profiles: the audit scope and all_profiles, beside the rules of the field that reached the job.
    events: may("readRevocationJobEvents", authenticated, scope(Scope.audit), scope(Scope.allProfiles)),
  },
  // Reached only through a history field above, which has applied its rules.
  WorkerSessionEventConnection: allowed("edges", "pageInfo"),
  WorkerSessionEventEdge: allowed("cursor", "node"),
  WorkerSessionEventPageInfo: allowed("hasNextPage", "endCursor"),
  WorkerSessionEvent: allowed("id", "profileId", "action", "outcome", "actor", "requestId", "deelRequestId", "jobId", "at"),
  RevokeWorkerSessionPayload: {
    profileId: allow,
    revokedAt: allow,
    // The revoke scope lets a caller end a session, not read who minted it or when: the ledger's
    // record follows the read rule, and the revoke itself has already happened.
    session: may("readRevokedSession", authenticated, scope(Scope.read), reachParent),
  },
  _Service: allowed("sdl"),
};

/** Every `Type.field` the map names (tests check that the schema has no field without a rule). */
export function permissionRuleNames(): Set<string> {
  const names = new Set<string>();
  for (const [typeName, rules] of Object.entries(ruleTree)) for (const field of Object.keys(rules)) names.add(`${typeName}.${field}`);
  return names;
}

/** The permission map as graphql-shield middleware. The edge pipeline (edge.ts) asks it for each guarded field. */
export const permissions = shield(ruleTree, {
  fallbackRule: deny,
  fallbackError: () => forbidden(),
  // A rule that throws answers with its error rather than "Not Authorised!".
  allowExternalErrors: true,
  debug: false,
});

/** True when the map's rule for `Type.field` is the constant `allow` (the edge leaves such fields unwrapped). */
export function isAlwaysAllowed(typeName: string, fieldName: string): boolean {
  const rules = (ruleTree as Record<string, Record<string, unknown>>)[typeName];
  return rules !== undefined && rules[fieldName] === allow;
}

/**
 * Per entity type of the schema, the fields whose rule is not the constant `allow`: each runs the
 * map once per representation of an entity fetch (the entity guard weighs a fetch by them). Any
 * field the map does not name is denied, so it counts too: the schema is asked for its fields.
 */
export function guardedEntityFields(schema: GraphQLSchema, entityTypes: readonly string[]): Map<string, Set<string>> {
  const guarded = new Map<string, Set<string>>();
  for (const typeName of entityTypes) {
    const type = schema.getType(typeName);
    if (!isObjectType(type)) continue;
    guarded.set(typeName, new Set(Object.keys(type.getFields()).filter((field) => !isAlwaysAllowed(typeName, field))));
  }
  return guarded;
}
