import { Field, GraphQLISODateTime, ID, ObjectType } from "type-graphql";
import { WorkerSession } from "./worker-session.type.js";

@ObjectType("CreateWorkerSessionPayload", { description: "A freshly minted worker session." })
export class CreateWorkerSessionPayload {
  @Field(() => String, {
    description:
      "The worker access token (24 h). Returned here and never again: hand it to the worker's app, do not store it.",
  })
  token!: string;

  @Field(() => WorkerSession, { description: "The session as the ledger now records it." })
  session!: WorkerSession;
}

@ObjectType("RevokeWorkerSessionPayload", { description: "The outcome of a revoke." })
export class RevokeWorkerSessionPayload {
  @Field(() => ID, { description: "The worker's Deel HRIS profile id." })
  profileId!: string;

  @Field(() => GraphQLISODateTime, { description: "When Deel confirmed the revoke." })
  revokedAt!: Date;

  @Field(() => WorkerSession, {
    nullable: true,
    description: "The session as the ledger now records it, or null when this service never minted one for the profile.",
  })
  session!: WorkerSession | null;
}
