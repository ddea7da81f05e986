/**
 * The sandbox's Deel API: routing and behaviour of `POST /workers/session`,
 * `DELETE /workers/{profile_id}/session` and `GET /people/me`; `POST /magic-link`, authorized by a
 * worker token, is answered in magic-link.ts.
 *
 * Request pipeline on the `workers/session` routes, in this order:
 *   record → route (404/405) → authenticate (401) → rate limit (429) → authorize (403) → fault
 *   → idempotency decision → latency → handle.
 * The organization's rate limit is checked before the scope check so that the read-only token's calls
 * spend the organization's budget too (Deel limits per organization, whatever the token).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { BodyTooLargeError } from "../../base/bounded-body.js";
import { isUuid } from "../../base/profile-id.js";
import { applyFault, takeFault } from "./faults.js";
import { magicLink } from "./magic-link.js";
import { bearer, header, randomHex, readRequestBody, send, sendError, sendTooLarge } from "./http.js";
import type { Claim } from "./idempotency-store.js";
import type { RecordedRequest, SandboxCore, SandboxState } from "./state.js";

/** How many requests `requests` remembers (oldest dropped first). */
const MAX_RECORDED_REQUESTS = 10_000;
const MAX_IDEMPOTENCY_KEY_LENGTH = 64;

type Route = { kind: "create" } | { kind: "revoke"; rawId: string } | { kind: "me" } | { kind: "magic_link" };

function route(basePath: string, pathname: string): { route: Route; method: string } | undefined {
  if (!pathname.startsWith(`${basePath}/`)) return undefined;
  const rest = pathname.slice(basePath.length);
  if (rest === "/workers/session") return { route: { kind: "create" }, method: "POST" };
  if (rest === "/people/me") return { route: { kind: "me" }, method: "GET" };
  if (rest === "/magic-link") return { route: { kind: "magic_link" }, method: "POST" };
  const match = /^\/workers\/([^/]+)\/session$/.exec(rest);
  if (match?.[1] !== undefined) return { route: { kind: "revoke", rawId: match[1] }, method: "DELETE" };
  return undefined;
}

function recordRequest(st: SandboxState, req: IncomingMessage, method: string, rawUrl: string, at: number): RecordedRequest {
  const record: RecordedRequest = { method, path: rawUrl, status: 0, at };
  const idempotencyKey = header(req, "idempotency-key");
  if (idempotencyKey !== undefined) record.idempotencyKey = idempotencyKey;
  const requestId = header(req, "x-request-id");
  if (requestId !== undefined) record.requestId = requestId;
  st.requests.push(record);
  // A long-running local sandbox must not grow without bound: keep the most recent requests.
  if (st.requests.length > MAX_RECORDED_REQUESTS) st.requests.splice(0, st.requests.length - MAX_RECORDED_REQUESTS);
  return record;
}

/** Per-organization rolling one-second window over accepted requests, at `now`. False when the call is over the limit. */
function admit(st: SandboxState, rateLimitRps: number, now: number): boolean {
  if (rateLimitRps <= 0) return true;
  while (st.window.length > 0 && st.window[0]! <= now - 1000) st.window.shift();
  if (st.window.length >= rateLimitRps) return false;
  st.window.push(now);
  return true;
}

/**
 * Records and answers one API request (anything outside `/__sandbox`). `rawUrl` is the request
 * target as received, `pathname` its path part, not normalized.
 */
export async function handleDeelRequest(
  core: SandboxCore,
  req: IncomingMessage,
  res: ServerResponse,
  rawUrl: string,
  pathname: string,
): Promise<void> {
  const st = core.st;
  const method = (req.method ?? "GET").toUpperCase();
  const record = recordRequest(st, req, method, rawUrl, core.clock.now());

  const matched = route(core.basePath, pathname);
  if (!matched) return sendError(req, res, record, 404, "Not found");
  if (matched.method !== method) {
    return sendError(req, res, record, 405, "Method not allowed", { headers: { allow: matched.method } });
  }
  const { route: target } = matched;
  if (target.kind === "me") return me(core, st, req, res, record);
  if (target.kind === "magic_link") return magicLink(core, st, req, res, record, () => admit(st, core.settings.rateLimitRps, core.clock.now()));

  // Authenticate: the token must belong to the organization.
  const token = bearer(req);
  if (token !== core.orgToken && token !== core.readOnlyToken) {
    return sendError(req, res, record, 401, "Unauthorized");
  }
  // No rate-limit headers, like Deel.
  if (!admit(st, core.settings.rateLimitRps, core.clock.now())) return sendError(req, res, record, 429, "Too many requests");
  // Authorize: the read-only token lacks admin:worker.
  if (token !== core.orgToken) {
    return sendError(req, res, record, 403, "The token lacks the admin:worker scope");
  }

  const fault = takeFault(st, method, target.kind);
  if (fault) return applyFault(req, res, record, fault);

  if (target.kind === "create") return create(core, st, req, res, record);
  return revoke(core, st, req, res, record, target.rawId);
}

async function me(core: SandboxCore, st: SandboxState, req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
  const token = bearer(req);
  const profileId = token === undefined ? undefined : st.tokens.get(token);
  const session = profileId === undefined ? undefined : st.sessions.get(profileId);
  if (profileId === undefined || !session || session.token !== token || session.revoked || session.expiresAt.getTime() <= core.clock.now()) {
    return sendError(req, res, record, 401, "Unauthorized");
  }
  const index = core.profiles.findIndex((id) => id.toLowerCase() === profileId);
  const body = JSON.stringify({
    data: {
      id: core.profiles[index] ?? profileId,
      full_name: `Sandbox Worker ${index + 1}`,
      email: `worker${index + 1}@sandbox.invalid`,
    },
  });
  send(res, record, 200, body);
}

async function create(core: SandboxCore, st: SandboxState, req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
  let body: Buffer;
  try {
    body = await readRequestBody(req);
  } catch (error) {
    if (error instanceof BodyTooLargeError) return sendTooLarge(req, res, record);
    return; // the client went away
  }

  const key = record.idempotencyKey;
  if (key !== undefined && (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH)) {
    await core.sleep(core.settings.latencyMs);
    return sendError(req, res, record, 400, `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`, {
      path: "headers.idempotency-key",
    });
  }

  // The idempotency decision is taken at arrival, before the latency, so that a retry sent while the
  // first call is still being processed sees it as in flight.
  let claim: Claim | undefined;
  if (key !== undefined) {
    const decision = st.idempotency.begin(key);
    if (decision.kind === "replay") {
      await core.sleep(core.settings.latencyMs);
      const { answer } = decision;
      return send(res, record, answer.status, answer.body, { "x-original-request-id": answer.apiReqId });
    }
    if (decision.kind === "in_flight") {
      await core.sleep(core.settings.latencyMs);
      return sendError(req, res, record, 429, "A request with this Idempotency-Key is in progress", {
        headers: { "retry-after": "1" },
      });
    }
    claim = decision.claim;
  }

  try {
    await core.sleep(core.settings.latencyMs);
    const outcome = mint(core, st, body);
    if ("error" in outcome) {
      return sendError(req, res, record, outcome.error, outcome.message, { path: outcome.path });
    }
    if (key !== undefined) st.idempotency.complete(key, { status: 201, body: outcome.body, apiReqId: randomHex(16) });
    send(res, record, 201, outcome.body);
  } finally {
    // Failed attempts are not stored: a retry with the same key is processed fresh.
    if (key !== undefined && claim !== undefined) st.idempotency.release(key, claim);
  }
}

/** Validates a mint body and, when valid, replaces the profile's token. */
function mint(core: SandboxCore, st: SandboxState, raw: Buffer): { body: string } | { error: number; message: string; path?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    return { error: 400, message: "Request body is not valid JSON" };
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  const profileId = typeof data === "object" && data !== null ? (data as { profile_id?: unknown }).profile_id : undefined;
  if (typeof profileId !== "string") return { error: 400, message: "data.profile_id is required", path: "data.profile_id" };
  if (!isUuid(profileId)) return { error: 400, message: "data.profile_id must be a UUID", path: "data.profile_id" };
  const id = profileId.toLowerCase();
  if (!core.profileSet.has(id)) return { error: 404, message: "Worker profile not found", path: "data.profile_id" };

  const previous = st.sessions.get(id);
  if (previous) st.tokens.delete(previous.token); // one token per worker: the old one stops working
  const token = randomBytes(32).toString("base64url");
  const expiresAt = new Date(core.clock.now() + core.settings.tokenLifetimeMs);
  st.sessions.set(id, { token, expiresAt, revoked: false });
  st.tokens.set(token, id);
  return { body: JSON.stringify({ data: { token, expires_at: expiresAt.toISOString() } }) };
}

async function revoke(
  core: SandboxCore,
  st: SandboxState,
  req: IncomingMessage,
  res: ServerResponse,
  record: RecordedRequest,
  rawId: string,
): Promise<void> {
  try {
    await readRequestBody(req); // drained and ignored, so the connection can be reused
  } catch (error) {
    if (error instanceof BodyTooLargeError) return sendTooLarge(req, res, record);
    return;
  }
  await core.sleep(core.settings.latencyMs);
  let profileId: string;
  try {
    profileId = decodeURIComponent(rawId);
  } catch {
    return sendError(req, res, record, 400, "profile_id must be a UUID", { path: "profile_id" });
  }
  if (!isUuid(profileId)) return sendError(req, res, record, 400, "profile_id must be a UUID", { path: "profile_id" });
  const id = profileId.toLowerCase();
  if (!core.profileSet.has(id)) return sendError(req, res, record, 404, "Worker profile not found", { path: "profile_id" });
  const session = st.sessions.get(id);
  if (session) session.revoked = true; // no live token: still 204 (Deel documents nothing else)
  send(res, record, 204, "");
}
