/**
 * The sandbox's `POST {base}/magic-link` (Deel's White Label sign-in), authorized by a *worker*
 * token the sandbox minted.
 *
 * Pipeline: authenticate (a live token: not revoked, not replaced, not expired; else 401
 * `{"error":"Unauthorized"}`, the shape Deel uses here) → rate limit (429) → fault (route
 * `magic_link`) → read and validate the body (400 in Deel's envelope) → latency → 201
 * `{"data":{"magic_link","expires_at"}}`. The record of an accepted request keeps the SHA-256 of the
 * token that authorized it (never the token) and what the body asked for.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import { BodyTooLargeError } from "../../base/bounded-body.js";
import { applyFault, takeFault } from "./faults.js";
import { bearer, randomHex, readRequestBody, send, sendError, sendTooLarge } from "./http.js";
import type { RecordedRequest, SandboxCore, SandboxState } from "./state.js";

/** How long a sandbox magic link lives. */
export const MAGIC_LINK_LIFETIME_MS = 10 * 60 * 1000;
/** Where sandbox links point: a reserved `.test` host, so no link ever resolves. */
const LINK_ORIGIN = "https://sandbox.letsdeel.test";

/** The lower-cased profile whose current token `token` is, live at `now`; undefined for anything else. */
function liveProfileOf(st: SandboxState, token: string | undefined, now: number): string | undefined {
  const profileId = token === undefined ? undefined : st.tokens.get(token);
  const session = profileId === undefined ? undefined : st.sessions.get(profileId);
  if (profileId === undefined || !session || session.token !== token || session.revoked || session.expiresAt.getTime() <= now) {
    return undefined;
  }
  return profileId;
}

type Parsed = { redirectPath: string; onSuccessRedirectUrl?: string } | { error: string; path?: string };

/** Validates the body as Deel would: `data.redirect_path` required, `data.on_success_redirect_url` an absolute URL when given. */
function parseBody(raw: Buffer): Parsed {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    return { error: "Request body is not valid JSON" };
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (typeof data !== "object" || data === null) return { error: "data is required", path: "data" };
  const { redirect_path: redirectPath, on_success_redirect_url: successUrl } = data as Record<string, unknown>;
  if (typeof redirectPath !== "string" || redirectPath === "") return { error: "data.redirect_path is required", path: "data.redirect_path" };
  if (!redirectPath.startsWith("/")) return { error: "data.redirect_path must be a relative path", path: "data.redirect_path" };
  if (successUrl === undefined || successUrl === null) return { redirectPath };
  if (typeof successUrl !== "string" || !URL.canParse(successUrl)) {
    return { error: "data.on_success_redirect_url must be an absolute URL", path: "data.on_success_redirect_url" };
  }
  return { redirectPath, onSuccessRedirectUrl: successUrl };
}

/** Answers one `POST /magic-link` (already recorded and routed). `admit` spends a slot of the organization's rate limit. */
export async function magicLink(
  core: SandboxCore,
  st: SandboxState,
  req: IncomingMessage,
  res: ServerResponse,
  record: RecordedRequest,
  admit: () => boolean,
): Promise<void> {
  const token = bearer(req);
  const profileId = liveProfileOf(st, token, core.clock.now());
  if (profileId === undefined || token === undefined) return send(res, record, 401, JSON.stringify({ error: "Unauthorized" }));
  if (!admit()) return sendError(req, res, record, 429, "Too many requests");
  const fault = takeFault(st, "POST", "magic_link");
  if (fault) return applyFault(req, res, record, fault);

  let raw: Buffer;
  try {
    raw = await readRequestBody(req);
  } catch (error) {
    if (error instanceof BodyTooLargeError) return sendTooLarge(req, res, record);
    return; // the client went away
  }
  await core.sleep(core.settings.latencyMs);
  const body = parseBody(raw);
  if ("error" in body) return sendError(req, res, record, 400, body.error, body.path === undefined ? {} : { path: body.path });

  record.magicLink = { profileId, tokenSha256: createHash("sha256").update(token).digest("hex"), redirectPath: body.redirectPath };
  if (body.onSuccessRedirectUrl !== undefined) record.magicLink.onSuccessRedirectUrl = body.onSuccessRedirectUrl;
  const link = `${LINK_ORIGIN}/magic/${randomHex(24)}?redirect=${encodeURIComponent(body.redirectPath)}`;
  const expiresAt = new Date(core.clock.now() + MAGIC_LINK_LIFETIME_MS);
  send(res, record, 201, JSON.stringify({ data: { magic_link: link, expires_at: expiresAt.toISOString() } }));
}
