import { Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import type { ProfileId } from "../base/profile-id.js";
import { actorOf } from "./actor.js";
import type { GatewayContext } from "./context.js";
import { EdgeArg } from "./edge-arg.js";
import type { CreateSessionInput, RevokeSessionInput } from "./edge-input.js";
import { CreateWorkerSessionInput, RevokeWorkerSessionInput } from "./types/inputs.js";
import { CreateWorkerSessionPayload, RevokeWorkerSessionPayload } from "./types/payloads.js";
import { toSessionView, type SessionView } from "./session-view.js";
import { WorkerSession } from "./types/worker-session.type.js";

/**
 * The three operations of the GraphQL contract. Thin: the edge pipeline (edge.ts) has checked the
 * caller and parsed the input, and WorkerSessionService holds the rules and the Deel calls.
 */
@Resolver()
export class WorkerSessionResolver {
  @Query(() => WorkerSession, {
    nullable: true,
    description: "The latest session minted through this service for a worker, or null if none is known.",
  })
  workerSession(
    @EdgeArg("profileId", () => ID, { description: "The worker's Deel HRIS profile id (a UUID)." }) profileId: ProfileId,
    @Ctx() ctx: GatewayContext,
  ): Promise<SessionView | null> {
    return ctx.loaders.session.load(profileId);
  }

  @Mutation(() => CreateWorkerSessionPayload, {
    description: "Mint a 24-hour worker access token at Deel. The token is returned here and never again.",
  })
  async createWorkerSession(
    @EdgeArg("input", () => CreateWorkerSessionInput, { description: "Which worker, and an optional idempotency key." })
    input: CreateSessionInput,
    @Ctx() ctx: GatewayContext,
  ) {
    const { token, session } = await ctx.sessions.create(actorOf(ctx), input.profileId, input.idempotencyKey);
    return { token, session: toSessionView(session, ctx.sessions.statusNow(session)) };
  }

  @Mutation(() => RevokeWorkerSessionPayload, { description: "Revoke the worker's token at Deel now." })
  async revokeWorkerSession(
    @EdgeArg("input", () => RevokeWorkerSessionInput, { description: "Which worker's session to revoke." })
    input: RevokeSessionInput,
    @Ctx() ctx: GatewayContext,
  ) {
    const revoked = await ctx.sessions.revoke(actorOf(ctx), input.profileId);
    return { ...revoked, session: revoked.session === null ? null : toSessionView(revoked.session, ctx.sessions.statusNow(revoked.session)) };
  }
}
