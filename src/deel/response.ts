/**
 * How an answer from Deel is read: what a success body must hold, what an error envelope may tell
 * (Deel's `api_req_id`, `Retry-After`), and which `DeelError` a status becomes. Pure functions over
 * a response already received: no I/O, no logging. Nothing from an upstream body ends up in an error
 * except a request id that looks like one.
 */
import type { IncomingHttpHeaders } from "node:http";
import { systemClock } from "../base/clock.js";
import { DeelError, type DeelErrorKind } from "./errors.js";
import type { MintedSession } from "./types.js";

/** Largest response body read from Deel; a bigger 2xx is a `bad_response`. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** One answer from Deel as the client received it. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body, or undefined when it exceeded MAX_RESPONSE_BYTES. */
  body: Buffer | undefined;
  /**
   * When the answer was received (epoch ms, on the client's clock): the "now" an HTTP-date
   * `Retry-After` is measured from. Absent: read from the real clock when needed.
   */
  receivedAt?: number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** An ISO 8601 date-time with a zone, as Deel writes `expires_at`. The one copy: magic-link.ts reads it too. */
export const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** The first value of a header (undici may give an array). */
export function firstHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The body as JSON; undefined when absent, empty or not JSON. */
export function parseJson(body: Buffer | undefined): unknown {
  if (body === undefined || body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** A plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deel's `api_req_id` from the error envelope, only when it looks like an id (it ends up in logs and GraphQL extensions). */
export function extractDeelRequestId(body: unknown): string | undefined {
  if (!isRecord(body) || !isRecord(body.request)) return undefined;
  const id = body.request.api_req_id;
  const text = typeof id === "number" && Number.isFinite(id) ? String(id) : id;
  return typeof text === "string" && REQUEST_ID.test(text) ? text : undefined;
}

/**
 * Parses `Retry-After` (delta-seconds or an HTTP-date) into whole seconds ≥ 1, rounding
 * up; undefined when absent or unparseable. A date in the past means "now", i.e. 1.
 */
export function parseRetryAfter(value: string | undefined, now: number = systemClock.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) {
    const seconds = Math.ceil(Number(text));
    return Number.isFinite(seconds) ? Math.max(1, seconds) : undefined;
  }
  // Only something that looks like an HTTP-date: Date.parse alone would accept "1" or "soon 2".
  if (!/^[A-Za-z]{3},? /.test(text)) return undefined;
  const at = Date.parse(text);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(1, Math.ceil((at - now) / 1000));
}

/**
 * The session a 201 to `POST /workers/session` carries, or undefined when the body lacks a usable
 * token and a valid `expires_at`. `replayed` is true when Deel answered with `x-original-request-id`;
 * `deelRequestId` is then that original id (a success body carries none of its own).
 */
export function mintedSessionFrom(res: RawResponse): MintedSession | undefined {
  const json = parseJson(res.body);
  const data = isRecord(json) ? json.data : undefined;
  const token = isRecord(data) ? data.token : undefined;
  const expiresRaw = isRecord(data) ? data.expires_at : undefined;
  const expiresAt = typeof expiresRaw === "string" && ISO_DATE_TIME.test(expiresRaw) ? new Date(expiresRaw) : undefined;
  if (typeof token !== "string" || token.trim() === "" || expiresAt === undefined || !Number.isFinite(expiresAt.getTime())) {
    return undefined;
  }
  const original = firstHeader(res.headers, "x-original-request-id");
  const deelRequestId = extractDeelRequestId(json) ?? (original !== undefined && REQUEST_ID.test(original) ? original : undefined);
  const minted: MintedSession = { token, expiresAt, replayed: original !== undefined };
  if (deelRequestId !== undefined) minted.deelRequestId = deelRequestId;
  return minted;
}

/** Whether a body is what a successful 200 to `DELETE /workers/{id}/session` may carry: nothing, or `{}`. */
export function isEmptyBody(body: Buffer): boolean {
  const text = body.toString("utf8").trim();
  const json = parseJson(body);
  return text === "" || (isRecord(json) && Object.keys(json).length === 0);
}

function kindForStatus(status: number): DeelErrorKind {
  if (status === 400) return "bad_request";
  if (status === 401 || status === 403) return "credentials";
  if (status === 404) return "not_found";
  if (status === 429) return "rate_limited";
  if (status >= 500 && status <= 599) return "unavailable";
  return "bad_response";
}

/** Turns a non-success answer to `operation` into a DeelError: status first, then whatever the body offers. */
export function errorForResponse(operation: string, res: RawResponse): DeelError {
  const { status } = res;
  const details: { status: number; deelRequestId?: string; retryAfterSeconds?: number } = { status };
  const deelRequestId = extractDeelRequestId(parseJson(res.body));
  if (deelRequestId !== undefined) details.deelRequestId = deelRequestId;

  if (status >= 200 && status <= 299) {
    const why = res.body === undefined ? ` with a body over ${MAX_RESPONSE_BYTES} bytes` : "";
    return new DeelError("bad_response", `Deel answered an unexpected ${status}${why} on ${operation}`, details);
  }
  if (status >= 300 && status <= 399) {
    return new DeelError("bad_response", `Deel answered ${status} on ${operation} (redirects are not followed)`, details);
  }
  const kind = kindForStatus(status);
  if (kind === "rate_limited" || (kind === "unavailable" && status === 503)) {
    // Honoured by the resilience layer's retries (429, and a 503 that says when to come back).
    const retryAfterSeconds = parseRetryAfter(firstHeader(res.headers, "retry-after"), res.receivedAt ?? systemClock.now());
    if (retryAfterSeconds !== undefined) details.retryAfterSeconds = retryAfterSeconds;
  }
  const prefix = kind === "credentials" ? "Deel refused the organization token: " : "";
  return new DeelError(kind, `${prefix}Deel answered ${status} on ${operation}`, details);
}
