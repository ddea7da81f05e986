/**
 * What a transport failure toward Deel says about the request: its error code, and whether the
 * request can have reached Deel at all (which decides whether a token may have been minted).
 */
import { isRecord } from "./response.js";

/** The `code` of a transport error (e.g. `ECONNREFUSED`), when it looks like one. */
export function errorCode(error: unknown): string | undefined {
  const code = isRecord(error) ? error.code : undefined;
  return typeof code === "string" && /^[A-Z0-9_]{1,64}$/i.test(code) ? code : undefined;
}

/**
 * Transport error codes raised before the request could leave: the connection was never made (refused,
 * unreachable, DNS, connect timeout, TLS handshake), or undici refused the request itself. Deel
 * cannot have acted on it. Any other transport failure (a reset, a closed socket, our deadline) may
 * come after the request was written: Deel may have acted.
 */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EAI_NONAME",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
  "UND_ERR_INVALID_ARG",
  "EPROTO",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
]);

/** Whether a transport error (or its cause) shows that the request never left (see NOT_SENT_CODES). */
export function neverSent(error: unknown): boolean {
  for (const candidate of [error, isRecord(error) ? error.cause : undefined]) {
    const code = errorCode(candidate);
    if (code !== undefined && (NOT_SENT_CODES.has(code) || code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_"))) return true;
  }
  return false;
}
