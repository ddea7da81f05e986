import type { IncomingMessage, ServerResponse } from "node:http";
import { context, propagation, SpanKind, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";

/**
 * With a tracer, wraps the `/graphql` handler in one SERVER span per request, the child of the caller's
 * `traceparent` when it sent one (a router does). The GraphQL operation plugin names it after the
 * operation (batching is off: one request, one operation). Everything the request does (ledger,
 * budget, Deel) runs inside it and becomes its child.
 *
 * Only the method, route, status and response size class are recorded: no header, no query string,
 * no body. Headers are read only by the propagator, for `traceparent` and `tracestate`.
 */
export function traceGraphQLRequests<Req extends IncomingMessage>(
  tracer: Tracer | undefined,
  handler: (req: Req, res: ServerResponse) => Promise<void>,
): (req: Req, res: ServerResponse) => Promise<void> {
  // Tracing off: the handler itself, nothing wrapped.
  if (tracer === undefined) return handler;
  return async (req, res) => {
    const parent = propagation.extract(context.active(), req.headers);
    const method = (req.method ?? "GET").toUpperCase();
    const span = tracer.startSpan(
      `${method} /graphql`,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": method, "http.route": "/graphql", "url.path": "/graphql" } },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), () => handler(req, res));
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: "request failed" });
      throw error;
    } finally {
      span.setAttribute("http.response.status_code", res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
  };
}
