/**
 * Fault injection for the Deel sandbox: the shapes, a validator shared by the in-process API
 * (`injectFault`) and the HTTP control route (`POST /__sandbox/faults`), and how an injected fault is
 * picked and answered on a `workers/session` call.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { send, sendError } from "./http.js";
import type { FaultRoute, RecordedRequest, SandboxFault, SandboxState } from "./state.js";

export type { ActiveFault, FaultOptions, FaultRoute, SandboxFault } from "./state.js";

const FAULT_ROUTES: readonly string[] = ["create", "revoke", "magic_link"];

function isStatus(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 100 && value <= 599;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Returns a clean copy of `value` when it is a valid fault, or a short reason why not. Unknown extra
 * properties are dropped, so a control-route body cannot smuggle anything else in.
 */
export function parseFault(value: unknown): SandboxFault | string {
  if (!isRecord(value)) return "fault must be an object";
  switch (value.kind) {
    case "status":
      return isStatus(value.status) ? { kind: "status", status: value.status } : "status fault needs an HTTP status";
    case "rate_limit": {
      const seconds = value.retryAfterSeconds;
      if (seconds === undefined) return { kind: "rate_limit" };
      return typeof seconds === "number" && Number.isInteger(seconds) && seconds >= 0
        ? { kind: "rate_limit", retryAfterSeconds: seconds }
        : "retryAfterSeconds must be a non-negative integer";
    }
    case "hang":
      return { kind: "hang" };
    case "reset":
      return { kind: "reset" };
    case "non_json":
      if (value.status === undefined) return { kind: "non_json" };
      return isStatus(value.status) ? { kind: "non_json", status: value.status } : "non_json status must be an HTTP status";
    case "raw": {
      if (!isStatus(value.status)) return "raw fault needs an HTTP status";
      if (typeof value.body !== "string") return "raw fault needs a string body";
      const fault: SandboxFault = { kind: "raw", status: value.status, body: value.body };
      if (value.contentType !== undefined) {
        if (typeof value.contentType !== "string") return "contentType must be a string";
        fault.contentType = value.contentType;
      }
      if (value.headers !== undefined) {
        if (!isRecord(value.headers) || !Object.values(value.headers).every((v) => typeof v === "string")) {
          return "headers must map names to strings";
        }
        fault.headers = { ...(value.headers as Record<string, string>) };
      }
      return fault;
    }
    default:
      return "unknown fault kind";
  }
}

/** Validates `times` / `method` / `route`; returns the normalized options or a reason. */
export function parseFaultOptions(
  times: unknown,
  method: unknown,
  route?: unknown,
): { remaining: number; method?: "POST" | "DELETE"; route?: FaultRoute } | string {
  if (route !== undefined && route !== null) {
    if (typeof route !== "string" || !FAULT_ROUTES.includes(route)) return `route must be one of ${FAULT_ROUTES.join(", ")}`;
    const rest = parseFaultOptions(times, method);
    return typeof rest === "string" ? rest : { ...rest, route: route as FaultRoute };
  }
  let remaining = Infinity;
  if (times !== undefined && times !== null) {
    if (typeof times !== "number" || !(times >= 1) || (Number.isFinite(times) && !Number.isInteger(times))) {
      return "times must be a positive integer";
    }
    remaining = times;
  }
  if (method === undefined || method === null) return { remaining };
  if (method !== "POST" && method !== "DELETE") return "method must be POST or DELETE";
  return { remaining, method };
}

/** Takes one use of the first fault that applies to `method` on `route`, if any (a used-up fault is removed). */
export function takeFault(st: SandboxState, method: string, route?: FaultRoute): SandboxFault | undefined {
  const index = st.faults.findIndex(
    (f) => f.remaining > 0 && (f.method === undefined || f.method === method) && (f.route === undefined || f.route === route),
  );
  const active = st.faults[index];
  if (!active) return undefined;
  active.remaining -= 1;
  if (active.remaining <= 0) st.faults.splice(index, 1);
  return active.fault;
}

/** Answers the request as `fault` says, instead of handling it. */
export function applyFault(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, fault: SandboxFault): void {
  switch (fault.kind) {
    case "status":
      return sendError(req, res, record, fault.status, fault.status >= 500 ? "Internal server error" : "Injected error");
    case "rate_limit":
      return sendError(req, res, record, 429, "Too many requests", {
        headers: fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) },
      });
    case "non_json": {
      const status = fault.status ?? 502;
      const html = `<!DOCTYPE html><html><head><title>${status}</title></head><body><h1>${status}</h1><p>upstream trouble</p></body></html>`;
      return send(res, record, status, html, {}, "text/html; charset=utf-8");
    }
    case "raw":
      return send(res, record, fault.status, fault.body, fault.headers ?? {}, fault.contentType ?? "application/json");
    case "hang":
      // Leave the request open; close() or the client ends it. Status stays 0.
      return;
    case "reset":
      record.status = 0;
      req.socket.destroy();
      return;
  }
}
