import { Field, GraphQLISODateTime, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";

/** Where a revocation job stands. */
export enum RevocationJobStatus {
  RUNNING = "RUNNING",
  DONE = "DONE",
  FAILED = "FAILED",
}

registerEnumType(RevocationJobStatus, {
  name: "RevocationJobStatus",
  description: "Where a revocation job (the kill switch) stands.",
  valuesConfig: {
    RUNNING: { description: "Revoking in the background; creates for its profiles (and by its createdBy caller) are refused." },
    DONE: { description: "Every target is settled: revoked, or failed for good (see failed)." },
    FAILED: { description: "Stopped before every target was settled, because no revoke could succeed (see failureReason)." },
  },
});

@InputType("RevokeWorkerSessionsInput", {
  description: "Which sessions to revoke in bulk: those minted by one caller, those of some profiles, or both (at least one filter).",
})
export class RevokeWorkerSessionsInput {
  @Field(() => String, {
    nullable: true,
    description: "Only sessions minted by this caller (its `sub`). While the job runs, this caller's creates are refused too.",
  })
  createdBy?: string | null;

  @Field(() => [ID], {
    nullable: true,
    description: "Only sessions of these worker profiles (UUIDs, at most 2,000). With createdBy, only those of them that caller minted.",
  })
  profileIds?: string[] | null;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: true,
    description: "Only sessions that are ACTIVE (or UNKNOWN: a token may exist) when the job lists them. Default true.",
  })
  onlyActive?: boolean | null;
}

@ObjectType("RevocationJob", {
  description:
    "A bulk revocation run in the background: the ledger's sessions matching its filters when it started, each revoked at Deel through the ordinary revoke path, paced by the organization's budget, resumed by another replica if the one running it stops.",
})
export class RevocationJob {
  @Field(() => ID, { description: "The job's id: poll revocationJob(id:) with it." })
  id!: string;

  @Field(() => RevocationJobStatus, { description: "RUNNING until every target is settled (DONE), or until no revoke can succeed (FAILED)." })
  status!: RevocationJobStatus;

  @Field(() => Int, { description: "How many sessions the job revokes." })
  total!: number;

  @Field(() => Int, { description: "How many of them are revoked so far." })
  revoked!: number;

  @Field(() => Int, { description: "How many could not be revoked (Deel answered NOT_FOUND, or every retry failed)." })
  failed!: number;

  @Field(() => GraphQLISODateTime, { description: "When the job was started." })
  startedAt!: Date;

  @Field(() => GraphQLISODateTime, { nullable: true, description: "When the job ended (DONE or FAILED); null while RUNNING." })
  finishedAt!: Date | null;

  @Field(() => String, { description: "The `sub` of the operator who started the job; recorded as revokedBy on every session it revokes." })
  requestedBy!: string;

  @Field(() => String, { nullable: true, description: "The createdBy filter, if the job was given one." })
  createdBy!: string | null;

  @Field(() => Boolean, { description: "Whether only ACTIVE (or UNKNOWN) sessions were listed." })
  onlyActive!: boolean;

  @Field(() => String, { nullable: true, description: "Why a FAILED job stopped; null otherwise." })
  failureReason!: string | null;
}
