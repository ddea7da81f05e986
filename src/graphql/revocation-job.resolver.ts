import { Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import type { RevocationJobFilters, RevocationJobId } from "../base/revocation-job.js";
import type { RevocationJob as Job } from "../sessions/jobs/job.js";
import type { RevocationRunner } from "../sessions/jobs/runner.js";
import { verifiedCaller } from "./actor.js";
import type { GatewayContext } from "./context.js";
import { EdgeArg } from "./edge-arg.js";
import { RevocationJob, RevocationJobStatus, RevokeWorkerSessionsInput } from "./types/revocation-job.type.js";

function runner(ctx: GatewayContext): RevocationRunner {
  if (ctx.revocations === undefined) throw new Error("revocation jobs are not wired into this context");
  return ctx.revocations;
}

function toView(job: Job): RevocationJob {
  return {
    id: job.id,
    status: RevocationJobStatus[job.status],
    total: job.total,
    revoked: job.revoked,
    failed: job.failed,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    requestedBy: job.requestedBy,
    createdBy: job.filters.createdBy,
    onlyActive: job.filters.onlyActive,
    failureReason: job.failureReason,
  };
}

/**
 * The kill switch (README: Incident response): `revokeWorkerSessions` starts a revocation job and
 * answers at once with it, RUNNING; `revocationJob` reads its progress. Thin: the edge pipeline has
 * checked the caller and parsed the filters and the id (and writes the job start's audit line);
 * RevocationRunner does the work.
 */
@Resolver()
export class RevocationJobResolver {
  @Mutation(() => RevocationJob, {
    description:
      "Revoke, in the background, every session of the ledger that matches the filters (the kill switch for a leaked caller or a misbehaving integration). Answers at once with the RUNNING job; poll revocationJob for its progress.",
  })
  async revokeWorkerSessions(
    @EdgeArg("input", () => RevokeWorkerSessionsInput, { description: "Which sessions to revoke: by creator, by profile, or both." })
    filters: RevocationJobFilters,
    @Ctx() ctx: GatewayContext,
  ): Promise<RevocationJob> {
    return toView(await runner(ctx).startJob(filters, verifiedCaller(ctx).sub));
  }

  @Query(() => RevocationJob, { nullable: true, description: "A revocation job's progress, or null if no such job is known (or it is past retention)." })
  async revocationJob(
    @EdgeArg("id", () => ID, { description: "The job's id, as revokeWorkerSessions answered it." }) id: RevocationJobId,
    @Ctx() ctx: GatewayContext,
  ): Promise<RevocationJob | null> {
    const job = await runner(ctx).get(id);
    return job === null ? null : toView(job);
  }
}
