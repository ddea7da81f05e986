import type { GraphQLError } from "graphql";
import type { Checked } from "../base/checked.js";
import { parseHistoryPage, type HistoryPageArgs } from "../base/history-page.js";
import { parseIdempotencyKey, type IdempotencyKey } from "../base/idempotency-key.js";
import { parseProfileId, type ProfileId } from "../base/profile-id.js";
import { parseMagicLinkTarget, type MagicLinkTarget } from "../base/redirects.js";
import { parseRevocationJobFilters, parseRevocationJobId, type RevocationJobFilters, type RevocationJobId } from "../base/revocation-job.js";
import type { GatewayContext } from "./context.js";
import { badUserInput } from "./errors.js";

/**
 * The one validator at the GraphQL edge (README: Callers and authorization, the "input" column).
 * It turns each guarded field's GraphQL input into branded values (`ProfileId`, `IdempotencyKey`,
 * `MagicLinkTarget`, revocation filters and job ids) with the constructors of src/base/, and
 * answers BAD_USER_INPUT with their words otherwise. The edge pipeline (edge.ts) runs it once per
 * field, and hands what it made, in place of the field's arguments, to the permission map and the
 * resolver: nothing below checks or lower-cases these values again.
 */

/** `Query.workerSession` and `Worker.session`, parsed. */
export interface ProfileArgs {
  readonly profileId: ProfileId;
}

/** `createWorkerSession(input:)`, parsed. */
export interface CreateSessionInput {
  readonly profileId: ProfileId;
  readonly idempotencyKey: IdempotencyKey | undefined;
}

/** `revokeWorkerSession(input:)`, parsed. */
export interface RevokeSessionInput {
  readonly profileId: ProfileId;
}

/** `createWorkerMagicLink(input:)`, parsed. */
export interface MagicLinkInput extends CreateSessionInput {
  readonly target: MagicLinkTarget;
}

/** `revocationJob(id:)`, parsed. */
export interface RevocationJobArgs {
  readonly id: RevocationJobId;
}

/** A field's arguments as the edge hands them on: parsed, in place of the raw ones. */
export type ParsedArgs = Readonly<Record<string, unknown>>;

/**
 * A `Worker` entity below `_entities`: its key as the representation gave it (what
 * `Worker.profileId` answers), and that key parsed once, where the representation entered, so that
 * `Worker.session` reads it instead of parsing it again.
 */
export interface WorkerEntity {
  readonly profileId: unknown;
  readonly key: Checked<ProfileId>;
}

/** `Worker.__resolveReference`: an entity reference is only its key. */
export function workerEntity(reference: { profileId?: unknown }): WorkerEntity {
  return { profileId: reference.profileId, key: parseProfileId(reference.profileId) };
}

/** One field's input step: its parsed arguments, or the BAD_USER_INPUT answer. */
export type InputStep = (args: RawArgs, parent: unknown, ctx: GatewayContext) => ParsedArgs | GraphQLError;

type RawInput = {
  profileId?: unknown;
  idempotencyKey?: unknown;
  redirectPath?: unknown;
  onSuccessRedirectUrl?: unknown;
  createdBy?: unknown;
  profileIds?: unknown;
  onlyActive?: unknown;
};
type RawArgs = { profileId?: unknown; id?: unknown; input?: RawInput; first?: unknown; after?: unknown };

/** `workerSessionHistory`, `Worker.sessionHistory`, parsed (`RevocationJob.events`: the page alone). */
export interface HistoryArgs extends HistoryPageArgs {
  readonly profileId: ProfileId;
}

/** A page's `first` and `after`, parsed, with `extra` beside them (a `HistoryArgs`, or the page alone). */
function historyPage(args: RawArgs, extra: { profileId?: ProfileId }): ParsedArgs | GraphQLError {
  const page = parseHistoryPage(args.first, args.after);
  if (!page.ok) return fail(page);
  const parsed: HistoryPageArgs & { profileId?: ProfileId } = { ...extra, ...page.value };
  return { ...parsed };
}

function fail(checked: { ok: false; problem: string }): GraphQLError {
  return badUserInput(checked.problem);
}

/** An optional key: absent or null is none; anything given is held to the rule ("" included). */
function optionalKey(value: unknown): Checked<IdempotencyKey | undefined> {
  return value === undefined || value === null ? { ok: true, value: undefined } : parseIdempotencyKey(value);
}

/** A create's input: the key first, then the profile (today's order of answers). */
function createInput(input: RawInput | undefined): CreateSessionInput | GraphQLError {
  const key = optionalKey(input?.idempotencyKey);
  if (!key.ok) return fail(key);
  const profileId = parseProfileId(input?.profileId);
  if (!profileId.ok) return fail(profileId);
  return { profileId: profileId.value, idempotencyKey: key.value };
}

/** Wraps a parsed input as the field's `input` argument. */
function asInput<T extends object>(parsed: T | GraphQLError): ParsedArgs | GraphQLError {
  return parsed instanceof Error ? parsed : { input: parsed };
}

/**
 * The input step of every field that takes input, by `Type.field`. A field named here gets its
 * arguments parsed before the permission map sees them; `RevokeWorkerSessionPayload.session` needs
 * none (its parent, the revoke's answer, already holds a `ProfileId`).
 */
export const INPUT_STEPS: Readonly<Record<string, Readonly<Record<string, InputStep>>>> = {
  Query: {
    workerSession: (args) => {
      const profileId = parseProfileId(args.profileId);
      return profileId.ok ? ({ profileId: profileId.value } satisfies ProfileArgs) : fail(profileId);
    },
    revocationJob: (args) => {
      const id = parseRevocationJobId(args.id);
      return id.ok ? ({ id: id.value } satisfies RevocationJobArgs) : fail(id);
    },
    workerSessionHistory: (args) => {
      const profileId = parseProfileId(args.profileId);
      return profileId.ok ? historyPage(args, { profileId: profileId.value }) : fail(profileId);
    },
  },
  Mutation: {
    createWorkerSession: (args) => asInput(createInput(args.input)),
    revokeWorkerSession: (args) => {
      const profileId = parseProfileId(args.input?.profileId);
      return profileId.ok ? { input: { profileId: profileId.value } satisfies RevokeSessionInput } : fail(profileId);
    },
    createWorkerMagicLink: (args, _parent, ctx) => {
      const created = createInput(args.input);
      if (created instanceof Error) return created;
      const target = parseMagicLinkTarget(args.input, ctx.magicLinkRedirectOrigins ?? []);
      return target.ok ? { input: { ...created, target: target.value } satisfies MagicLinkInput } : fail(target);
    },
    revokeWorkerSessions: (args) => {
      const filters = parseRevocationJobFilters(args.input);
      return filters.ok ? { input: filters.value satisfies RevocationJobFilters } : fail(filters);
    },
  },
  Worker: {
    // The key was parsed by __resolveReference; this only reads the outcome.
    session: (_args, parent) => {
      const { key } = parent as WorkerEntity;
      return key.ok ? ({ profileId: key.value } satisfies ProfileArgs) : fail(key);
    },
    sessionHistory: (args, parent) => {
      const { key } = parent as WorkerEntity;
      return key.ok ? historyPage(args, { profileId: key.value }) : fail(key);
    },
  },
  RevocationJob: {
    // The job is the parent (a job the caller was allowed to read); only the page is parsed.
    events: (args) => historyPage(args, {}),
  },
};
