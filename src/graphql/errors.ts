import type { ApolloServerPlugin } from "@apollo/server";
import { unwrapResolverError } from "@apollo/server/errors";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";
import { classifyFailure, type ErrorCode } from "./failures.js";
import { LIMIT_NAMES, limitMessage } from "./limits.js";
import { isLedgerError } from "../sessions/errors.js";
import type { GatewayContext } from "./context.js";

/** Extensions a caller may see besides `code`. Anything else is dropped by `formatError`. */
export interface GatewayErrorExtensions {
  retryAfterSeconds?: number;
  deelRequestId?: string;
}

/**
 * Builds an error with one of the gateway's codes (README: Errors). It captures no stack trace: it
 * is an answer the gateway chose (a refusal, a known failure), never shown with a stack, and an
 * entity fetch may build many (the error a known failure came from keeps its own stack for the log).
 */
export function gatewayError(code: ErrorCode, message: string, extensions: GatewayErrorExtensions = {}): GraphQLError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new GraphQLError(message, { extensions: { code, ...extensions } });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function unauthenticated(reason: string): GraphQLError {
  return gatewayError("UNAUTHENTICATED", reason);
}

export function forbidden(message = "Not allowed: the caller lacks the scope or may not act on this profile"): GraphQLError {
  return gatewayError("FORBIDDEN", message);
}

export function badUserInput(message: string): GraphQLError {
  return gatewayError("BAD_USER_INPUT", message);
}

/** Codes that pass `formatError` as they are: the gateway's own, and GraphQL's own request errors. */
const PASS_THROUGH = new Set<string>([
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "BAD_USER_INPUT",
  "NOT_FOUND",
  "RATE_LIMITED",
  "UPSTREAM_UNAVAILABLE",
  "UPSTREAM_CREDENTIALS",
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_REQUEST",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);

function pick(formatted: GraphQLFormattedError, error: GraphQLError | GraphQLFormattedError): GraphQLFormattedError {
  const source = error.extensions ?? {};
  const extensions: Record<string, unknown> = { code: source.code };
  if (typeof source.retryAfterSeconds === "number") extensions.retryAfterSeconds = source.retryAfterSeconds;
  if (typeof source.deelRequestId === "string") extensions.deelRequestId = source.deelRequestId;
  const result: { -readonly [K in keyof GraphQLFormattedError]: GraphQLFormattedError[K] } = { message: error.message, extensions };
  if (formatted.locations !== undefined) result.locations = formatted.locations;
  if (formatted.path !== undefined) result.path = formatted.path;
  return result;
}

/**
 * The caller-facing form of an error the gateway knows: one that `classifyFailure` recognises
 * (Deel's, the verifier's, the ledger's, a superseded idempotency key), or a GraphQL error that
 * already carries a known code. Undefined for anything unexpected.
 */
function translate(original: unknown): GraphQLError | undefined {
  const failure = classifyFailure(original);
  if (failure !== undefined) {
    const { code, message, ...extensions } = failure;
    return gatewayError(code, message, extensions);
  }
  if (original instanceof GraphQLError && PASS_THROUGH.has(String(original.extensions.code))) return original;
  return undefined;
}

/** graphql-js's message for a document over `parseOptions.maxTokens` (its own spelling). */
const TOKEN_LIMIT_MESSAGE = /^Syntax Error: Document contains more th(?:at|an) (\d+) tokens/;

/** True when Apollo masks this error as INTERNAL_SERVER_ERROR (and it must be logged in full). */
function isUnexpected(error: GraphQLError | GraphQLFormattedError, original: unknown): boolean {
  if (translate(original) !== undefined) return false;
  const code = error.extensions?.code;
  return !(typeof code === "string" && PASS_THROUGH.has(code) && !(original instanceof Error && !(original instanceof GraphQLError)));
}

/**
 * Apollo's `formatError`: the single boundary where every error becomes what a caller sees.
 * Known errors are translated and keep only `code`, `retryAfterSeconds` and `deelRequestId`;
 * anything else is masked as INTERNAL_SERVER_ERROR (logged by `errorLogging`, with the request id).
 */
export function createFormatError(exposeStack: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    // graphql-js words its token limit its own way ("more that 1000 tokens. Parsing aborted."):
    // say it as every limit is said, with the setting that changes it.
    const overTokens = formatted.extensions?.code === "GRAPHQL_PARSE_FAILED" ? TOKEN_LIMIT_MESSAGE.exec(formatted.message) : null;
    if (overTokens !== null) {
      return pick(formatted, { ...formatted, message: `Syntax Error: ${limitMessage(LIMIT_NAMES.tokens, Number(overTokens[1]))}` });
    }
    const original = unwrapResolverError(error);
    const translated = translate(original);
    if (translated !== undefined) return pick(formatted, translated);
    if (!isUnexpected(formatted, original)) return pick(formatted, formatted);
    const masked: { -readonly [K in keyof GraphQLFormattedError]: GraphQLFormattedError[K] } = {
      message: "Internal server error",
      // Local mode only: the stack of an unexpected error helps a developer; an expected one needs none.
      extensions:
        exposeStack && formatted.extensions?.stacktrace !== undefined
          ? { code: "INTERNAL_SERVER_ERROR", stacktrace: formatted.extensions.stacktrace }
          : { code: "INTERNAL_SERVER_ERROR" },
    };
    if (formatted.locations !== undefined) masked.locations = formatted.locations;
    if (formatted.path !== undefined) masked.path = formatted.path;
    return masked;
  };
}

/** How many failing paths a summary log line lists. */
const LOGGED_PATHS = 5;

/**
 * Logs, with the request's own logger (so the line carries its request id), the errors that
 * `formatError` masks, and ledger failures: at most one line of each per request, whatever the
 * request holds (an `_entities` fetch of thousands of bad representations is one line, not
 * thousands). The line carries the first error, the count, and the first few paths; the logger
 * bounds it (an error that quotes a caller's 97 kB is cut, message and stack) and admits warn and
 * error lines within a per-process budget (README: Errors). Expected errors (denials, Deel's answers) are not logged here: the audit line and the metrics
 * already count them.
 */
export function errorLogging(fallback: Logger): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue }) {
          const ledger: GraphQLError[] = [];
          const unexpected: GraphQLError[] = [];
          for (const error of errors) {
            const original = unwrapResolverError(error);
            if (isLedgerError(original)) ledger.push(error);
            else if (isUnexpected(error, original)) unexpected.push(error);
          }
          if (ledger.length === 0 && unexpected.length === 0) return;
          const log = (contextValue as GatewayContext | undefined)?.log ?? fallback;
          const summary = (found: GraphQLError[]) => ({
            err: unwrapResolverError(found[0]),
            count: found.length,
            paths: found.slice(0, LOGGED_PATHS).map((error) => error.path ?? null),
          });
          if (ledger.length > 0) log.warn(summary(ledger), "the session ledger failed a GraphQL operation");
          if (unexpected.length > 0) log.error(summary(unexpected), `unexpected error in a GraphQL operation (${unexpected.length} in this request)`);
        },
      };
    },
  };
}
