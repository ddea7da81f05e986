import { Arg, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import { profileKey } from "../base/profile-id.js";
import { actorOf } from "./actor.js";
import type { GatewayContext } from "./context.js";
import { CreateWorkerSessionInput, RevokeWorkerSessionInput } from "./types/inputs.js";
import { CreateWorkerSessionPayload, RevokeWorkerSessionPayload } from "./types/payloads.js";
import { toSessionView, type SessionView } from "./session-view.js";
import { WorkerSession } from "./types/worker-session.type.js";

/**
 * The three operations of the GraphQL contract. Thin: authorization and input checks live in the shield map,
 * the rules and Deel calls in WorkerSessionService.
 */
@Resolver()
export class WorkerSessionResolver {
  @Query(() => WorkerSession, {
    nullable: true,
    description: "The latest session minted through this service for a worker, or null if none is known.",
  })
  workerSession(
    @Arg("profileId", () => ID, { description: "The worker's Deel HRIS profile id (a UUID)." }) profileId: string,
    @Ctx() ctx: GatewayContext,
  ): Promise<SessionView | null> {
    return ctx.loaders.session.load(profileKey(profileId));
  }

  @Mutation(() => CreateWorkerSessionPayload, {
    description: "Mint a 24-hour worker access token at Deel. The token is returned here and never again.",
  })
  async createWorkerSession(
    @Arg("input", () => CreateWorkerSessionInput, { description: "Which worker, and an optional idempotency key." })
    input: CreateWorkerSessionInput,
    @Ctx() ctx: GatewayContext,
  ) {
    const { token, session } = await ctx.sessions.create(actorOf(ctx), profileKey(input.profileId), input.idempotencyKey ?? undefined);
    return { token, session: toSessionView(session) };
  }

  @Mutation(() => RevokeWorkerSessionPayload, { description: "Revoke the worker's token at Deel now." })
  async revokeWorkerSession(
    @Arg("input", () => RevokeWorkerSessionInput, { description: "Which worker's session to revoke." })
    input: RevokeWorkerSessionInput,
    @Ctx() ctx: GatewayContext,
  ) {
    const revoked = await ctx.sessions.revoke(actorOf(ctx), profileKey(input.profileId));
    return { ...revoked, session: revoked.session === null ? null : toSessionView(revoked.session) };
  }
}
