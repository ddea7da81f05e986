import type { ApolloServerPlugin } from "@apollo/server";
import { unwrapResolverError } from "@apollo/server/errors";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";
import { AuthError } from "../auth/verifier.js";
import { DeelError, isDeelError } from "../deel/errors.js";
import { assertNever, codeForDeelError, type ErrorCode } from "../errors.js";
import { isLedgerError, SupersededSessionError, type LedgerError } from "../sessions/errors.js";
import type { GatewayContext } from "./context.js";

/** Extensions a caller may see besides `code`. Anything else is dropped by `formatError`. */
export interface GatewayErrorExtensions {
  retryAfterSeconds?: number;
  deelRequestId?: string;
}

/** Builds an error with a SPEC code. */
export function gatewayError(code: ErrorCode, message: string, extensions: GatewayErrorExtensions = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
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

/** `retryAfterSeconds` is always a whole number of seconds, at least 1. */
export function retryAfter(seconds: number | undefined): number {
  if (seconds === undefined || !Number.isFinite(seconds)) return 1;
  return Math.max(1, Math.ceil(seconds));
}

/**
 * The one translation from the Deel client's errors to SPEC codes. The words are ours: the upstream
 * body, the URL and any token stay out of the message.
 */
export function fromDeelError(error: DeelError): GraphQLError {
  const extensions: GatewayErrorExtensions = {};
  if (error.deelRequestId !== undefined) extensions.deelRequestId = error.deelRequestId;
  const code = codeForDeelError(error.kind);
  switch (error.kind) {
    case "invalid_input":
      return gatewayError(code, "profileId must be a UUID", extensions);
    case "bad_request":
      return gatewayError(code, "Deel rejected the request as invalid", extensions);
    case "credentials":
      return gatewayError(code, "Deel refused the gateway's organization credentials; the operator must fix them", extensions);
    case "not_found":
      return gatewayError(code, "Deel does not know this worker profile", extensions);
    case "rate_limited": {
      const seconds = retryAfter(error.retryAfterSeconds);
      return gatewayError(code, `The organization's Deel request budget is spent; retry in ${seconds} s`, {
        ...extensions,
        retryAfterSeconds: seconds,
      });
    }
    case "unavailable":
      return gatewayError(code, "Deel is unavailable; try again shortly", extensions);
    case "bad_response":
      return gatewayError(code, "Deel answered in a way the gateway cannot use; try again shortly", extensions);
    default:
      return assertNever(error.kind);
  }
}

/**
 * The ledger's infrastructure (Redis) failing: retryable, like an upstream outage, so
 * UPSTREAM_UNAVAILABLE with words that say which part is down. The detail goes to the log.
 */
export function fromLedgerError(error: LedgerError): GraphQLError {
  switch (error.kind) {
    case "unavailable":
      return gatewayError("UPSTREAM_UNAVAILABLE", "The session ledger is unavailable; try again shortly");
    case "busy":
      return gatewayError("UPSTREAM_UNAVAILABLE", "Another operation on this worker profile is still in progress; try again shortly");
    case "fenced":
      return gatewayError("UPSTREAM_UNAVAILABLE", "The operation lost its turn on this worker profile and was not recorded; try again");
    default:
      return assertNever(error.kind);
  }
}

/** Codes that pass `formatError` as they are: SPEC §3's, and GraphQL's own request errors. */
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
 * The caller-facing form of an error the gateway knows: Deel's, the verifier's, the ledger's, a
 * superseded idempotency key, or a GraphQL error that already carries a known code. Undefined for
 * anything unexpected.
 */
function translate(original: unknown): GraphQLError | undefined {
  if (isDeelError(original)) return fromDeelError(original);
  if (original instanceof AuthError) return unauthenticated(original.message);
  if (isLedgerError(original)) return fromLedgerError(original);
  if (original instanceof SupersededSessionError) return badUserInput(original.message);
  if (original instanceof GraphQLError && PASS_THROUGH.has(String(original.extensions.code))) return original;
  return undefined;
}

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

/**
 * Logs, with the request's own logger (so the line carries its request id), every error that
 * `formatError` masks, and every ledger failure. Expected errors (denials, Deel's answers) are not
 * logged here: the audit line and the metrics already count them.
 */
export function errorLogging(fallback: Logger): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue }) {
          const log = (contextValue as GatewayContext | undefined)?.log ?? fallback;
          for (const error of errors) {
            const original = unwrapResolverError(error);
            if (isLedgerError(original)) log.warn({ err: original, path: error.path }, "the session ledger failed a GraphQL operation");
            else if (isUnexpected(error, original)) log.error({ err: original, path: error.path }, "unexpected error in a GraphQL operation");
          }
        },
      };
    },
  };
}
