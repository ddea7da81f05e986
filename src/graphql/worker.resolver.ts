import { Ctx, FieldResolver, Resolver } from "type-graphql";
import type { ProfileId } from "../base/profile-id.js";
import type { GatewayContext } from "./context.js";
import { EdgeValue } from "./edge-arg.js";
import type { SessionView } from "./session-view.js";
import { Worker } from "./types/worker.type.js";
import { WorkerSession } from "./types/worker-session.type.js";

/**
 * The federation entity's field. Every `session` of one `_entities` request shares one store read.
 * The entity's key was parsed where the representation entered (`__resolveReference`); the edge
 * hands it on as `profileId`.
 */
@Resolver(() => Worker)
export class WorkerResolver {
  @FieldResolver(() => WorkerSession, { nullable: true })
  session(@EdgeValue("profileId") profileId: ProfileId, @Ctx() ctx: GatewayContext): Promise<SessionView | null> {
    return ctx.loaders.session.load(profileId);
  }
}
