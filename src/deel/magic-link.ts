/**
 * `POST {base}/magic-link`, Deel's White Label sign-in: the request body the client sends and what
 * an answer means. Pure functions, no I/O, no logging.
 *
 * The call is authorized by the *worker* token, so a 401/403 says that token is dead at Deel
 * (`worker_token_refused`), never that the organization's credentials are wrong. Error bodies come
 * in Deel's envelope or, on 401/500, as `{"error":"…"}`; neither is ever copied into an error, and
 * the link itself never is either (it signs the worker in).
 */
import { DEEL_ENDPOINTS } from "../base/deel-endpoints.js";
import { DeelError } from "./errors.js";
import { errorForResponse, extractDeelRequestId, ISO_DATE_TIME, isRecord, parseJson, type RawResponse } from "./response.js";
import type { MagicLink, MagicLinkRequest } from "./types.js";

const MAGIC_LINK_OPERATION = DEEL_ENDPOINTS.createMagicLink;

/** Largest worker token the client sends (a header value). */
export const MAX_WORKER_TOKEN_LENGTH = 4096;
/** Longest link accepted from Deel. */
const MAX_LINK_LENGTH = 4096;

/** Throws `invalid_input` unless `token` can travel as a bearer header. The message never holds it. */
export function checkWorkerToken(token: unknown): asserts token is string {
  if (typeof token !== "string" || token.length === 0 || token.length > MAX_WORKER_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
    throw new DeelError("invalid_input", `The worker token must be 1 to ${MAX_WORKER_TOKEN_LENGTH} visible ASCII characters`);
  }
}

/**
 * The JSON body of `POST /magic-link`. The request is a `MagicLinkTarget`, checked and normalized
 * at the GraphQL edge, so it is sent as it is.
 */
export function magicLinkBody(request: MagicLinkRequest): string {
  const data: Record<string, string> = { redirect_path: request.redirectPath };
  if (request.onSuccessRedirectUrl !== undefined) data.on_success_redirect_url = request.onSuccessRedirectUrl;
  return JSON.stringify({ data });
}

/** The link a 2xx carries, or undefined unless `data.magic_link` is an https URL and `data.expires_at` a valid date-time. */
export function magicLinkFrom(res: RawResponse): MagicLink | undefined {
  const json = parseJson(res.body);
  const data = isRecord(json) ? json.data : undefined;
  const link = isRecord(data) ? data.magic_link : undefined;
  const expiresRaw = isRecord(data) ? data.expires_at : undefined;
  if (typeof link !== "string" || link.length > MAX_LINK_LENGTH || /\s/.test(link)) return undefined;
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" || url.username !== "" || url.password !== "") return undefined;
  const expiresAt = typeof expiresRaw === "string" && ISO_DATE_TIME.test(expiresRaw) ? new Date(expiresRaw) : undefined;
  if (expiresAt === undefined || !Number.isFinite(expiresAt.getTime())) return undefined;
  const magicLink: MagicLink = { url: link, expiresAt };
  const deelRequestId = extractDeelRequestId(json);
  if (deelRequestId !== undefined) magicLink.deelRequestId = deelRequestId;
  return magicLink;
}

/**
 * The DeelError for a non-success answer to `POST /magic-link`: 401/403 refuse the worker token;
 * every other status reads as on the session calls. A `{"error":"…"}` body adds nothing but is
 * harmless: only a request id that looks like one is ever kept from a body.
 */
export function magicLinkErrorFor(res: RawResponse): DeelError {
  if (res.status === 401 || res.status === 403) {
    const details: { status: number; deelRequestId?: string } = { status: res.status };
    const deelRequestId = extractDeelRequestId(parseJson(res.body));
    if (deelRequestId !== undefined) details.deelRequestId = deelRequestId;
    return new DeelError("worker_token_refused", `Deel refused the worker token (${res.status}) on ${MAGIC_LINK_OPERATION}`, details);
  }
  return errorForResponse(MAGIC_LINK_OPERATION, res);
}
