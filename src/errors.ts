import type { DeelErrorKind } from "./deel/errors.js";

/**
 * The error codes of SPEC §3. Every error a caller sees carries one of these (or one of GraphQL's
 * own request codes) in `extensions.code`. This module holds the names only; src/graphql/errors.ts
 * builds the GraphQL errors, and the audit log uses the same names for outcomes.
 */
export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "BAD_USER_INPUT"
  | "NOT_FOUND"
  | "RATE_LIMITED"
  | "UPSTREAM_UNAVAILABLE"
  | "UPSTREAM_CREDENTIALS"
  | "INTERNAL_SERVER_ERROR";

/** The SPEC code for each way a Deel call can fail. */
export function codeForDeelError(kind: DeelErrorKind): ErrorCode {
  switch (kind) {
    case "invalid_input":
    case "bad_request":
      return "BAD_USER_INPUT";
    case "credentials":
      return "UPSTREAM_CREDENTIALS";
    case "not_found":
      return "NOT_FOUND";
    case "rate_limited":
      return "RATE_LIMITED";
    case "unavailable":
    case "bad_response":
      return "UPSTREAM_UNAVAILABLE";
    default:
      return assertNever(kind);
  }
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`);
}
