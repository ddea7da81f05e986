import type { Caller } from "../auth/caller.js";
import type { Actor } from "../sessions/service.js";
import type { GatewayContext } from "./context.js";

/** The verified caller. The shield map has already proven there is one before a resolver runs. */
export function verifiedCaller(ctx: GatewayContext): Caller {
  if (ctx.auth.kind !== "verified") throw new Error("resolver reached without a verified caller");
  return ctx.auth.caller;
}

/** The acting caller and the request it acts in, for the service and its audit line. */
export function actorOf(ctx: GatewayContext): Actor {
  return { sub: verifiedCaller(ctx).sub, requestId: ctx.requestId, log: ctx.log };
}
