import { Directive, Field, ID, ObjectType } from "type-graphql";
import { WorkerSession } from "./worker-session.type.js";

@Directive('@key(fields: "profileId")')
@ObjectType("Worker", {
  description: "A Deel worker, as a federation entity keyed by profileId. This subgraph adds its session.",
})
export class Worker {
  @Field(() => ID, { description: "The worker's Deel HRIS profile id (a UUID)." })
  profileId!: string;

  @Field(() => WorkerSession, {
    nullable: true,
    description: "The latest session minted through this service for this worker, or null if none is known.",
  })
  session?: WorkerSession | null;
}
