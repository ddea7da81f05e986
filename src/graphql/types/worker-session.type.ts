import { Field, ID, ObjectType, registerEnumType } from "type-graphql";
import { GraphQLISODateTime } from "type-graphql";

/** The derived state of a session. */
export enum WorkerSessionStatus {
  ACTIVE = "ACTIVE",
  EXPIRED = "EXPIRED",
  REVOKED = "REVOKED",
  UNKNOWN = "UNKNOWN",
}

registerEnumType(WorkerSessionStatus, {
  name: "WorkerSessionStatus",
  description: "Where a worker session stands, derived when it is read.",
  valuesConfig: {
    ACTIVE: { description: "Minted through this service, not revoked, and not yet past expiresAt." },
    EXPIRED: { description: "Past expiresAt without having been revoked." },
    REVOKED: { description: "Revoked through this service." },
    UNKNOWN: {
      description:
        "A mint through this service was cut off before its answer was recorded (a crash, a lost answer): a token may exist at Deel. Revoke to be sure; a revoke or a new create resolves it.",
    },
  },
});

@ObjectType("WorkerSession", {
  description:
    "The latest worker access token minted through this service for one worker profile. The token itself is never stored and never part of this type.",
})
export class WorkerSession {
  @Field(() => ID, {
    description:
      "This session's key: the worker's profile id in lower case. The ledger keeps one record per worker profile, so the profile id is its natural key, and a client's cache keeps one WorkerSession per worker (a revoke or a new create updates it in place).",
  })
  id!: string;

  @Field(() => ID, { description: "The worker's Deel HRIS profile id (a UUID)." })
  profileId!: string;

  @Field(() => WorkerSessionStatus, {
    description:
      "UNKNOWN while a cut-off mint may have left a token at Deel; otherwise REVOKED once revoked; otherwise EXPIRED from expiresAt on; otherwise ACTIVE.",
  })
  status!: WorkerSessionStatus;

  @Field(() => GraphQLISODateTime, { description: "When this service minted the session." })
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { description: "When Deel said the token expires (Deel's expires_at)." })
  expiresAt!: Date;

  @Field(() => GraphQLISODateTime, { nullable: true, description: "When the session was revoked through this service, if it was." })
  revokedAt!: Date | null;

  @Field(() => String, { description: "The `sub` of the caller that minted the session." })
  createdBy!: string;

  @Field(() => String, { nullable: true, description: "The `sub` of the caller that revoked the session, if any." })
  revokedBy!: string | null;
}
