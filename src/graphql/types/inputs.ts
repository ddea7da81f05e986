import { Field, ID, InputType } from "type-graphql";

@InputType("CreateWorkerSessionInput", { description: "Which worker to mint a session for." })
export class CreateWorkerSessionInput {
  @Field(() => ID, { description: "The worker's Deel HRIS profile id (a UUID)." })
  profileId!: string;

  @Field(() => String, {
    nullable: true,
    description:
      "Optional. The same key within 24 h returns the same token instead of minting a new one. At most 64 characters; scoped to the caller and the profile.",
  })
  idempotencyKey?: string | null;
}

@InputType("RevokeWorkerSessionInput", { description: "Which worker's session to revoke." })
export class RevokeWorkerSessionInput {
  @Field(() => ID, { description: "The worker's Deel HRIS profile id (a UUID)." })
  profileId!: string;
}
