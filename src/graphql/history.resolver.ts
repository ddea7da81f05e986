import { Ctx, FieldResolver, ID, Int, Query, Resolver, Root } from "type-graphql";
import type { HistoryPosition } from "../base/history-page.js";
import type { ProfileId } from "../base/profile-id.js";
import type { GatewayContext } from "./context.js";
import { EdgeArg, EdgeValue } from "./edge-arg.js";
import { toConnection } from "./history-view.js";
import { RevocationJob } from "./types/revocation-job.type.js";
import { WorkerSessionEventConnection } from "./types/history.type.js";
import { Worker } from "./types/worker.type.js";

const FIRST = { nullable: true, defaultValue: 20, description: "How many events, newest first: 1 to 100." } as const;
const AFTER = { nullable: true, description: "Only events older than this cursor (a page's endCursor, or an edge's cursor)." } as const;

// The parameters are listed last argument first: type-graphql records custom parameter decorators
// in the order they run (the last parameter's first), and the SDL lists arguments in that order.

/**
 * The session history (README: Session history): `workerSessionHistory`, the same on the federated
 * `Worker`, and a revocation job's revokes. Thin: the edge has checked the caller (the audit scope
 * and the profile rule) and parsed `first` and `after`; every page of one request, however many
 * `_entities` representations ask, is one store read (the request's history loader).
 */
@Resolver()
export class WorkerSessionHistoryResolver {
  @Query(() => WorkerSessionEventConnection, {
    description: "Everything that happened to a worker's sessions through this gateway, newest first: who minted, replayed, linked or revoked, and when. Needs the worker_sessions:audit scope.",
  })
  async workerSessionHistory(
    @Ctx() ctx: GatewayContext,
    @EdgeArg("after", () => String, AFTER) after: HistoryPosition | undefined,
    @EdgeArg("first", () => Int, FIRST) first: number,
    @EdgeArg("profileId", () => ID, { description: "The worker's Deel HRIS profile id (a UUID)." }) profileId: ProfileId,
  ): Promise<WorkerSessionEventConnection> {
    return toConnection(await ctx.loaders.history.load({ subject: { kind: "profile", id: profileId }, first, after }));
  }
}

/** `Worker.sessionHistory`: the entity's parsed key is handed on as `profileId`. */
@Resolver(() => Worker)
export class WorkerHistoryResolver {
  @FieldResolver(() => WorkerSessionEventConnection, {
    description: "This worker's session history, newest first (as workerSessionHistory). Needs the worker_sessions:audit scope.",
  })
  async sessionHistory(
    @Ctx() ctx: GatewayContext,
    @EdgeArg("after", () => String, AFTER) after: HistoryPosition | undefined,
    @EdgeArg("first", () => Int, FIRST) first: number,
    @EdgeValue("profileId") profileId: ProfileId,
  ): Promise<WorkerSessionEventConnection> {
    return toConnection(await ctx.loaders.history.load({ subject: { kind: "profile", id: profileId }, first, after }));
  }
}

/** `RevocationJob.events`: the job's revokes, their refusals, and the intents its revokes resolved, newest first. */
@Resolver(() => RevocationJob)
export class RevocationJobEventsResolver {
  @FieldResolver(() => WorkerSessionEventConnection, {
    description:
      "What this job did, newest first, across its profiles: its revokes (JOB_REVOKE), their refusals (JOB_REVOKE with the error code), and the INTENT_RESOLVED of each unresolved mint intent a job revoke ended. Needs the worker_sessions:audit scope.",
  })
  async events(
    @Ctx() ctx: GatewayContext,
    @EdgeArg("after", () => String, AFTER) after: HistoryPosition | undefined,
    @EdgeArg("first", () => Int, FIRST) first: number,
    @Root() job: RevocationJob,
  ): Promise<WorkerSessionEventConnection> {
    return toConnection(await ctx.loaders.history.load({ subject: { kind: "job", id: job.id }, first, after }));
  }
}
