import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import { statusOf, type SessionRecord } from "../sessions/record.js";
import type { Actor } from "../sessions/service.js";
import type { GatewayContext } from "./context.js";
import { CreateWorkerSessionInput, RevokeWorkerSessionInput } from "./types/inputs.js";
import { CreateWorkerSessionPayload, RevokeWorkerSessionPayload } from "./types/payloads.js";
import { WorkerSession, WorkerSessionStatus } from "./types/worker-session.type.js";

/** The acting caller. Shield has already proven there is one before any resolver here runs. */
function actor(ctx: GatewayContext): Actor {
  if (ctx.caller === null) throw new Error("resolver reached without a verified caller");
  return { sub: ctx.caller.sub, requestId: ctx.requestId, log: ctx.log };
}

/** UUIDs are case-insensitive; the ledger keys on the lower-case form. */
export function profileKey(profileId: string): string {
  return profileId.toLowerCase();
}

/**
 * The three operations of SPEC §3. Thin: authorization and input checks live in the shield map,
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
  ): Promise<SessionRecord | null> {
    return ctx.loaders.session.load(profileKey(profileId));
  }

  @Mutation(() => CreateWorkerSessionPayload, {
    description: "Mint a 24-hour worker access token at Deel. The token is returned here and never again.",
  })
  createWorkerSession(
    @Arg("input", () => CreateWorkerSessionInput, { description: "Which worker, and an optional idempotency key." })
    input: CreateWorkerSessionInput,
    @Ctx() ctx: GatewayContext,
  ) {
    return ctx.sessions.create(actor(ctx), profileKey(input.profileId), input.idempotencyKey ?? undefined);
  }

  @Mutation(() => RevokeWorkerSessionPayload, { description: "Revoke the worker's token at Deel now." })
  revokeWorkerSession(
    @Arg("input", () => RevokeWorkerSessionInput, { description: "Which worker's session to revoke." })
    input: RevokeWorkerSessionInput,
    @Ctx() ctx: GatewayContext,
  ) {
    return ctx.sessions.revoke(actor(ctx), profileKey(input.profileId));
  }
}

/** WorkerSession.status is derived from the clock at read time. */
@Resolver(() => WorkerSession)
export class WorkerSessionFieldsResolver {
  @FieldResolver(() => WorkerSessionStatus)
  status(@Root() record: SessionRecord): WorkerSessionStatus {
    return WorkerSessionStatus[statusOf(record, new Date())];
  }
}
