/**
 * Fault injection for the Deel sandbox: the shapes, and a validator shared by the in-process API
 * (`injectFault`) and the HTTP control route (`POST /__sandbox/faults`).
 */

/** One way for the sandbox to misbehave on the next matching `workers/session` call. */
export type SandboxFault =
  /** Answer this status with Deel's error envelope (e.g. 500, 503, or any 4xx). */
  | { kind: "status"; status: number }
  /** 429 envelope; a `Retry-After` header only when `retryAfterSeconds` is given. */
  | { kind: "rate_limit"; retryAfterSeconds?: number }
  /** Accept the request and never answer (until the client gives up or the sandbox closes). */
  | { kind: "hang" }
  /** An HTML body instead of JSON, with `status` (default 502). */
  | { kind: "non_json"; status?: number }
  /** Destroy the socket without answering. */
  | { kind: "reset" }
  /**
   * Any literal answer: truncated JSON, a 201 without a token, a bad `expires_at`, an unexpected 200…
   * `contentType` defaults to `application/json`; `headers` (an addition to the brief) lets a test send
   * e.g. an HTTP-date `Retry-After`.
   */
  | { kind: "raw"; status: number; body: string; contentType?: string; headers?: Record<string, string> };

/** Options of one injected fault. */
export interface FaultOptions {
  /** How many matching requests the fault applies to. Default: every one (Infinity). */
  times?: number;
  /** Only requests with this method. Default: both POST and DELETE. */
  method?: "POST" | "DELETE";
}

/** An injected fault with its remaining uses. */
export interface ActiveFault {
  fault: SandboxFault;
  remaining: number;
  method?: "POST" | "DELETE";
}

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

/** Validates `times` / `method`; returns the normalized options or a reason. */
export function parseFaultOptions(times: unknown, method: unknown): { remaining: number; method?: "POST" | "DELETE" } | string {
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
