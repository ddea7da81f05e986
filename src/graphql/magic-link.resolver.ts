import { Arg, Ctx, Mutation, Resolver } from "type-graphql";
import { profileKey } from "../base/profile-id.js";
import { checkMagicLinkRedirects } from "../base/redirects.js";
import type { MagicLinkOptions } from "../sessions/service.js";
import { actorOf } from "./actor.js";
import type { GatewayContext } from "./context.js";
import { badUserInput } from "./errors.js";
import { toSessionView } from "./session-view.js";
import { CreateWorkerMagicLinkInput, CreateWorkerMagicLinkPayload } from "./types/magic-link.type.js";

/**
 * `createWorkerMagicLink`: a Deel magic link instead of a worker token. Thin, like the other
 * resolvers: the shield map has checked the caller and the input (redirect rules included; this
 * resolver forwards the redirect values as that validator normalizes them), and
 * WorkerSessionService mints, records and asks Deel for the link. The worker token never reaches
 * this resolver.
 */
@Resolver()
export class MagicLinkResolver {
  @Mutation(() => CreateWorkerMagicLinkPayload, {
    description:
      "Mint (or, with the same idempotency key, reuse) a worker access token at Deel and turn it into a Deel magic link. Only the link is returned; the token never leaves the gateway.",
  })
  async createWorkerMagicLink(
    @Arg("input", () => CreateWorkerMagicLinkInput, { description: "Which worker, where the link lands, and an optional idempotency key." })
    input: CreateWorkerMagicLinkInput,
    @Ctx() ctx: GatewayContext,
  ) {
    // The values the shield rule accepted, normalized by the same validator (the URL's href, not
    // the caller's spelling of it): those, never the raw strings, go to Deel.
    const redirects = checkMagicLinkRedirects(input, ctx.magicLinkRedirectOrigins ?? []);
    if (!redirects.ok) throw badUserInput(redirects.problem);
    const options: MagicLinkOptions = { ...redirects.value };
    if (input.idempotencyKey !== undefined && input.idempotencyKey !== null) options.idempotencyKey = input.idempotencyKey;
    const { magicLink, expiresAt, session } = await ctx.sessions.magicLink(actorOf(ctx), profileKey(input.profileId), options);
    return { magicLink, expiresAt, session: toSessionView(session) };
  }
}
