import { Ctx, Mutation, Resolver } from "type-graphql";
import { actorOf } from "./actor.js";
import type { GatewayContext } from "./context.js";
import { EdgeArg } from "./edge-arg.js";
import type { MagicLinkInput } from "./edge-input.js";
import { toSessionView } from "./session-view.js";
import { CreateWorkerMagicLinkInput, CreateWorkerMagicLinkPayload } from "./types/magic-link.type.js";

/**
 * `createWorkerMagicLink`: a Deel magic link instead of a worker token. Thin, like the other
 * resolvers: the edge pipeline has checked the caller and turned the input into a `MagicLinkTarget`
 * (redirect rules included), and WorkerSessionService mints, records and asks Deel for the link.
 * The worker token never reaches this resolver.
 */
@Resolver()
export class MagicLinkResolver {
  @Mutation(() => CreateWorkerMagicLinkPayload, {
    description:
      "Mint (or, with the same idempotency key, reuse) a worker access token at Deel and turn it into a Deel magic link. Only the link is returned; the token never leaves the gateway.",
  })
  async createWorkerMagicLink(
    @EdgeArg("input", () => CreateWorkerMagicLinkInput, { description: "Which worker, where the link lands, and an optional idempotency key." })
    input: MagicLinkInput,
    @Ctx() ctx: GatewayContext,
  ) {
    const { magicLink, expiresAt, session } = await ctx.sessions.magicLink(actorOf(ctx), input.profileId, {
      target: input.target,
      idempotencyKey: input.idempotencyKey,
    });
    return { magicLink, expiresAt, session: toSessionView(session, ctx.sessions.statusNow(session)) };
  }
}
