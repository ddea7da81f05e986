import { Field, GraphQLISODateTime, ID, InputType, ObjectType } from "type-graphql";
import { WorkerSession } from "./worker-session.type.js";

@InputType("CreateWorkerMagicLinkInput", { description: "Which worker to make a Deel magic link for, and where it leads." })
export class CreateWorkerMagicLinkInput {
  @Field(() => ID, { description: "The worker's Deel HRIS profile id (a UUID)." })
  profileId!: string;

  @Field(() => String, {
    description:
      "Where the link lands inside Deel: a relative path such as /contracts, at most 512 characters, starting with /, without a scheme, //, a .. segment, backslashes or control characters (percent-encoded forms included).",
  })
  redirectPath!: string;

  @Field(() => String, {
    nullable: true,
    description:
      "Optional. Where Deel sends the worker once done: an absolute https URL (http only for localhost) whose origin the operator allowed in MAGIC_LINK_REDIRECT_ORIGINS.",
  })
  onSuccessRedirectUrl?: string | null;

  @Field(() => String, {
    nullable: true,
    description:
      "Optional. The same key within 24 h reuses the same worker token (the key is shared with createWorkerSession) instead of minting a new one. At most 64 characters; scoped to the caller and the profile.",
  })
  idempotencyKey?: string | null;
}

@ObjectType("CreateWorkerMagicLinkPayload", {
  description: "A Deel magic link that signs the worker in. The worker token it was made from stays in the gateway.",
})
export class CreateWorkerMagicLinkPayload {
  @Field(() => String, { description: "The link (https) that signs the worker in to Deel. Returned here and never again: hand it to the worker, do not store it." })
  magicLink!: string;

  @Field(() => GraphQLISODateTime, { description: "When the link stops working (Deel's expires_at; minutes, not hours)." })
  expiresAt!: Date;

  @Field(() => WorkerSession, { description: "The session whose token the link was made from, as the ledger now records it." })
  session!: WorkerSession;
}
