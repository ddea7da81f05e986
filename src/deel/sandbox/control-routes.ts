/**
 * The sandbox's HTTP control routes under `/__sandbox/`, for tests and benchmarks in another process:
 * faults, settings, a profile's session state (never its token), the recorded requests, and reset.
 * They need the organization token and are not recorded.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { BodyTooLargeError } from "../../base/bounded-body.js";
import { parseFault, parseFaultOptions } from "./faults.js";
import { bearer, readRequestBody, send, sendError, sendTooLarge } from "./http.js";
import { freshState, sessionOf, type SandboxCore, type Settings } from "./state.js";

/** Answers one request under `/__sandbox` (`pathname` is its raw path). */
export async function handleControl(core: SandboxCore, req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
  const method = (req.method ?? "GET").toUpperCase();
  const token = bearer(req);
  if (token !== core.orgToken) {
    return sendError(req, res, undefined, token === core.readOnlyToken ? 403 : 401, "Control routes need the organization token");
  }
  let body: unknown;
  try {
    const raw = await readRequestBody(req);
    body = raw.length === 0 ? undefined : JSON.parse(raw.toString("utf8"));
  } catch (error) {
    if (error instanceof SyntaxError) return sendError(req, res, undefined, 400, "Body is not valid JSON");
    if (error instanceof BodyTooLargeError) return sendTooLarge(req, res, undefined);
    return;
  }
  const object = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const json = (status: number, value: unknown) => send(res, undefined, status, JSON.stringify(value));

  if (pathname === "/__sandbox/faults" && method === "POST") {
    const fault = parseFault(object.fault);
    if (typeof fault === "string") return sendError(req, res, undefined, 400, fault, { path: "fault" });
    const options = parseFaultOptions(object.times, object.method, object.route);
    if (typeof options === "string") return sendError(req, res, undefined, 400, options);
    core.st.faults.push({ fault, ...options });
    return send(res, undefined, 204, "");
  }
  if (pathname === "/__sandbox/faults" && method === "DELETE") {
    core.st.faults = [];
    return send(res, undefined, 204, "");
  }
  if (pathname === "/__sandbox/settings" && (method === "PUT" || method === "GET")) {
    if (method === "PUT") {
      const updates: Partial<Settings> = {};
      for (const name of ["latencyMs", "tokenLifetimeMs", "rateLimitRps"] as const) {
        const value = object[name];
        if (value === undefined) continue;
        if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
          return sendError(req, res, undefined, 400, `${name} must be a non-negative number`, { path: name });
        }
        updates[name] = value;
      }
      Object.assign(core.settings, updates);
    }
    return json(200, { ...core.settings });
  }
  const stateMatch = /^\/__sandbox\/state\/([^/]+)$/.exec(pathname);
  if (stateMatch?.[1] !== undefined && method === "GET") {
    let id: string;
    try {
      id = decodeURIComponent(stateMatch[1]);
    } catch {
      return sendError(req, res, undefined, 400, "profile id must be a UUID");
    }
    const state = sessionOf(core.st, id);
    // Never the token: out-of-process callers only learn whether and until when one is live.
    if (!state) return sendError(req, res, undefined, 404, "No session was ever minted for this profile");
    return json(200, { expiresAt: state.expiresAt.toISOString(), revoked: state.revoked });
  }
  if (pathname === "/__sandbox/requests" && method === "GET") return json(200, { data: core.st.requests });
  if (pathname === "/__sandbox/reset" && method === "POST") {
    core.st = freshState(core.clock);
    return send(res, undefined, 204, "");
  }
  return sendError(req, res, undefined, 404, "Unknown control route");
}
