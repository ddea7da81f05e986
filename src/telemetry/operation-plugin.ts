import type { ApolloServerPlugin, BaseContext } from "@apollo/server";
import { SpanStatusCode, trace } from "@opentelemetry/api";

/**
 * Names the request's span after its GraphQL operation (`query WorkerSessions`), as the
 * OpenTelemetry GraphQL conventions do, and records the operation's type and name and the error
 * codes it answered with. Never the document, variables or result: a mutation's result holds a
 * worker token or a magic link.
 */
export function operationSpanPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      const span = trace.getActiveSpan();
      if (span === undefined || !span.isRecording()) return undefined;
      return {
        async didResolveOperation({ operation, operationName }) {
          if (operation === undefined) return;
          const type = operation.operation;
          span.updateName(operationName === null ? type : `${type} ${operationName}`);
          span.setAttribute("graphql.operation.type", type);
          if (operationName !== null) span.setAttribute("graphql.operation.name", operationName);
        },
        async willSendResponse({ response }) {
          const errors = response.body.kind === "single" ? response.body.singleResult.errors : undefined;
          if (errors === undefined || errors.length === 0) return;
          const codes = [...new Set(errors.map((error) => (typeof error.extensions?.code === "string" ? error.extensions.code : "UNKNOWN")))];
          span.setAttribute("graphql.error.codes", codes);
          span.setAttribute("graphql.error.count", errors.length);
          if (codes.includes("INTERNAL_SERVER_ERROR")) span.setStatus({ code: SpanStatusCode.ERROR, message: "INTERNAL_SERVER_ERROR" });
        },
      };
    },
  };
}
