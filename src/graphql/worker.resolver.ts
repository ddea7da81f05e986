import { Ctx, FieldResolver, Resolver, Root } from "type-graphql";
import type { GatewayContext } from "./context.js";
import type { SessionView } from "./session-view.js";
import { Worker } from "./types/worker.type.js";
import { WorkerSession } from "./types/worker-session.type.js";
import { profileKey } from "../base/profile-id.js";

/** The federation entity's field. Every `session` of one `_entities` request shares one store read. */
@Resolver(() => Worker)
export class WorkerResolver {
  @FieldResolver(() => WorkerSession, { nullable: true })
  session(@Root() worker: Worker, @Ctx() ctx: GatewayContext): Promise<SessionView | null> {
    return ctx.loaders.session.load(profileKey(worker.profileId));
  }
}
