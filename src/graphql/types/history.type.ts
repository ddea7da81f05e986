import { Field, GraphQLISODateTime, ID, ObjectType, registerEnumType } from "type-graphql";

/** What a history event records (sessions/history.ts). */
export enum WorkerSessionEventAction {
  MINT = "MINT",
  REPLAY = "REPLAY",
  MAGIC_LINK = "MAGIC_LINK",
  REVOKE = "REVOKE",
  JOB_REVOKE = "JOB_REVOKE",
  INTENT_WRITTEN = "INTENT_WRITTEN",
  INTENT_RESOLVED = "INTENT_RESOLVED",
  INTENT_UNKNOWN = "INTENT_UNKNOWN",
}

registerEnumType(WorkerSessionEventAction, {
  name: "WorkerSessionEventAction",
  description: "What happened to a worker's sessions. A refusal is recorded under the action that was refused, with its error code as the outcome.",
  valuesConfig: {
    MINT: { description: "A worker token minted at Deel and recorded (by createWorkerSession or createWorkerMagicLink)." },
    REPLAY: { description: "Deel replayed an earlier answer for the same caller and idempotencyKey (no new token)." },
    MAGIC_LINK: { description: "A magic link made from the worker's token. The link itself is never kept." },
    REVOKE: { description: "The worker's token revoked at Deel by a caller." },
    JOB_REVOKE: { description: "The worker's token revoked at Deel by a revocation job (jobId names it)." },
    INTENT_WRITTEN: { description: "A mint began: its intent was written before Deel was asked." },
    INTENT_RESOLVED: { description: "A mint's intent was resolved: its answer recorded, Deel minted nothing, or a revoke ended it." },
    INTENT_UNKNOWN: {
      description: "A mint's answer was lost (a crash, a timeout): from this time reads answered UNKNOWN, until a revoke or a new create resolved it.",
    },
  },
});

@ObjectType("WorkerSessionEvent", {
  description: "One event of a worker's session history. Never holds a token or a link.",
})
export class WorkerSessionEvent {
  @Field(() => ID, { description: "The event's id (unique within the history)." })
  id!: string;

  @Field(() => ID, { description: "The worker's Deel HRIS profile id." })
  profileId!: string;

  @Field(() => WorkerSessionEventAction, { description: "What happened (for a refusal: what was refused)." })
  action!: WorkerSessionEventAction;

  @Field(() => String, {
    description: "OK, the error code the caller was answered with (README: Errors) for a refusal that reached the service, or UNKNOWN for INTENT_UNKNOWN.",
  })
  outcome!: string;

  @Field(() => String, { description: "Who acted: the caller's sub (for a job's revokes, the operator who started the job)." })
  actor!: string;

  @Field(() => String, { description: "The gateway's request id (x-request-id; revocation-job:<id> for a job's revokes), matching the audit log line." })
  requestId!: string;

  @Field(() => String, { nullable: true, description: "Deel's request id for the call, when Deel answered." })
  deelRequestId!: string | null;

  @Field(() => ID, { nullable: true, description: "The revocation job that acted, if any." })
  jobId!: string | null;

  @Field(() => GraphQLISODateTime, { description: "When it happened." })
  at!: Date;
}

@ObjectType("WorkerSessionEventEdge", { description: "An event and the cursor just past it." })
export class WorkerSessionEventEdge {
  @Field(() => String, { description: "Pass as `after` to read the events older than this one." })
  cursor!: string;

  @Field(() => WorkerSessionEvent, { description: "The event." })
  node!: WorkerSessionEvent;
}

@ObjectType("WorkerSessionEventPageInfo", { description: "Where a page of the history stands." })
export class WorkerSessionEventPageInfo {
  @Field(() => Boolean, { description: "Older events follow this page." })
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: "The cursor of the page's last (oldest) event; null on an empty page." })
  endCursor!: string | null;
}

@ObjectType("WorkerSessionEventConnection", { description: "A page of a session history, newest event first (a Relay-style connection)." })
export class WorkerSessionEventConnection {
  @Field(() => [WorkerSessionEventEdge], { description: "The page's events, newest first." })
  edges!: WorkerSessionEventEdge[];

  @Field(() => WorkerSessionEventPageInfo, { description: "Whether older events follow, and the cursor to read them." })
  pageInfo!: WorkerSessionEventPageInfo;
}
