/**
 * HTTP plumbing of the Deel sandbox: request headers, bounded request bodies, and answers in Deel's
 * error envelope.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { BodyTooLargeError, readBoundedBody } from "../../base/bounded-body.js";
import type { RecordedRequest } from "./state.js";

/** Largest request body the sandbox reads. */
export const MAX_BODY_BYTES = 64 * 1024;
const DOCS_URL = "https://developer.deel.com/reference";

const CODES: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  429: "too_many_requests",
  500: "internal_server_error",
  502: "bad_gateway",
  503: "service_unavailable",
};

/** `bytes` random bytes as lower-case hex. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

/** The first value of a request header. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The token of an `Authorization: Bearer …` header, or undefined for any other shape. */
export function bearer(req: IncomingMessage): string | undefined {
  const value = header(req, "authorization");
  const match = value === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

/**
 * Reads the whole request body. Rejects with `BodyTooLargeError` when the declared or the actual
 * size passes MAX_BODY_BYTES (the request is then left paused: answer with `sendTooLarge`, whose
 * `connection: close` means the rest is never read), and with an error when the client goes away.
 */
export function readRequestBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(header(req, "content-length"));
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) return Promise.reject(new BodyTooLargeError(MAX_BODY_BYTES));
  return readBoundedBody(req, MAX_BODY_BYTES);
}

/** Deel's error envelope, with a fresh `api_req_id`. */
export function envelope(
  method: string,
  url: string,
  status: number,
  code: string,
  message: string,
  path?: string,
): { apiReqId: string; body: string } {
  const apiReqId = randomHex(16);
  const body = JSON.stringify({
    request: { method, url, status, api_req_id: apiReqId, docs: DOCS_URL, source: "sandbox", code },
    errors: [{ message, path: path ?? null }],
  });
  return { apiReqId, body };
}

/**
 * Answers `status` with `body` (none for a 204) and sets the record's status. Does nothing more when
 * the answer already started or the socket is gone.
 */
export function send(
  res: ServerResponse,
  record: RecordedRequest | undefined,
  status: number,
  body: string,
  headers: Record<string, string> = {},
  contentType = "application/json",
): void {
  if (record) record.status = status;
  if (res.headersSent || res.destroyed) return;
  const outgoing: Record<string, string | number> = { ...headers };
  if (body.length > 0 || status !== 204) {
    outgoing["content-type"] = contentType;
    outgoing["content-length"] = Buffer.byteLength(body);
  }
  res.writeHead(status, outgoing);
  res.end(status === 204 ? undefined : body);
}

/** Answers `status` with Deel's error envelope; `path` names the offending input. */
export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  record: RecordedRequest | undefined,
  status: number,
  message: string,
  options: { path?: string; headers?: Record<string, string> } = {},
): void {
  const { body } = envelope(req.method ?? "GET", req.url ?? "/", status, CODES[status] ?? "error", message, options.path);
  send(res, record, status, body, options.headers);
}

/** The 413 for a body over MAX_BODY_BYTES; closes the connection rather than read the rest. */
export function sendTooLarge(req: IncomingMessage, res: ServerResponse, record: RecordedRequest | undefined): void {
  sendError(req, res, record, 413, "Request body too large", { headers: { connection: "close" } });
}
