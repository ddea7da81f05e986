/**
 * The built-in Deel sandbox: a real node:http server that follows SPEC §2 (mint, revoke, `/people/me`,
 * error envelope, per-organization rate limit, idempotency), with fault injection for tests and
 * benchmarks. It backs local mode, the test suites and the benchmark.
 *
 * Request pipeline on the `workers/session` routes, in this order:
 *   record → route (404/405) → authenticate (401) → rate limit (429) → authorize (403) → fault
 *   → idempotency decision → latency → handle.
 * The organization's rate limit is checked before the scope check so that the read-only token's calls
 * spend the organization's budget too (Deel limits per organization, whatever the token).
 *
 * The sandbox never logs and never returns a token except in a mint answer (and through the
 * in-process `state()` helper, which tests use to compare with what the gateway handed out).
 */
import { setTimeout as delay } from "node:timers/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { isUuid } from "../profile-id.js";
import { parseFault, parseFaultOptions, type ActiveFault, type FaultOptions, type SandboxFault } from "./faults.js";

export type { SandboxFault, FaultOptions } from "./faults.js";

/** Five fixed v4 UUIDs seeded as worker profiles unless `profiles` says otherwise. */
export const SEEDED_PROFILE_IDS: readonly string[] = Object.freeze([
  "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50",
  "a2b4c6d8-e0f2-4416-9a3c-5e7f9b1d3f57",
  "0c9b8a7f-6e5d-4c4b-b3a2-918f7e6d5c4b",
  "5d2e8f14-7a93-4b06-a1c5-e83f29d76b40",
  "e7a1c3f5-9b2d-4e48-8f60-2c4a6e8b0d13",
]);

/** Start-up options; every one has a default. */
export interface SandboxOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port; `0` (default) picks a free one. */
  port?: number;
  /** Path prefix of the REST API. Default `/rest/v2`. */
  basePath?: string;
  /** The organization token (`admin:worker`). Default: random `deel-sandbox-org-<hex>`. */
  orgToken?: string;
  /** A known organization token *without* `admin:worker`: answered 403. Default: random. */
  readOnlyToken?: string;
  /** Known worker profile ids (UUIDs). Default: `SEEDED_PROFILE_IDS`. */
  profiles?: string[];
  /** Delay before answering a `workers/session` call. Default 0. */
  latencyMs?: number;
  /** Lifetime of minted tokens. Default 24 h. */
  tokenLifetimeMs?: number;
  /** Requests per rolling second per organization; `0` turns the limit off. Default 5. */
  rateLimitRps?: number;
}

/** One request as the sandbox saw it (control routes under `/__sandbox/` are not recorded). */
export interface RecordedRequest {
  method: string;
  /** The raw request target, exactly as received (path and query, not normalized). */
  path: string;
  idempotencyKey?: string;
  /** The `x-request-id` header. */
  requestId?: string;
  /** The status answered, or 0 while unanswered / for a hang or reset. */
  status: number;
  /** `Date.now()` at arrival. */
  at: number;
}

/** A running sandbox. */
export interface DeelSandbox {
  /** Base URL including the base path, e.g. `http://127.0.0.1:PORT/rest/v2`. */
  url: string;
  /** `http://host:port`: the control routes live at `${origin}/__sandbox/…`. (Addition to the brief.) */
  origin: string;
  orgToken: string;
  readOnlyToken: string;
  profiles: readonly string[];
  /** Every API request received, in arrival order (a live array; replaced by `reset()`). */
  readonly requests: RecordedRequest[];
  count(filter?: { method?: string; status?: number }): number;
  setLatency(ms: number): void;
  setTokenLifetime(ms: number): void;
  setRateLimit(rps: number): void;
  injectFault(fault: SandboxFault, options?: FaultOptions): void;
  clearFaults(): void;
  /** Deel's own view of the profile's current token, or undefined when none was ever minted. */
  state(profileId: string): { token: string; expiresAt: Date; revoked: boolean } | undefined;
  /** Forget sessions, idempotency records, requests, faults and the rate window (settings stay). */
  reset(): void;
  /** Stop listening and destroy every open socket, hung ones included. */
  close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** How many requests `requests` remembers (oldest dropped first). */
const MAX_RECORDED_REQUESTS = 10_000;
/** How many idempotency keys are remembered (oldest forgotten first), besides the 24 h expiry. */
const MAX_IDEMPOTENCY_KEYS = 100_000;
const MAX_BODY_BYTES = 64 * 1024;
const MAX_IDEMPOTENCY_KEY_LENGTH = 64;
const DOCS_URL = "https://developer.deel.com/reference";

interface Session {
  token: string;
  expiresAt: Date;
  revoked: boolean;
}

type IdempotencyEntry =
  | { state: "in_flight" }
  | { state: "done"; status: number; body: string; apiReqId: string; at: number };

/** Everything `reset()` forgets. In-flight handlers keep the object they started with. */
interface SandboxState {
  sessions: Map<string, Session>;
  /** Current token → profile id (a replaced token is removed). */
  tokens: Map<string, string>;
  idempotency: Map<string, IdempotencyEntry>;
  requests: RecordedRequest[];
  faults: ActiveFault[];
  /** Arrival times of the requests the rate limiter accepted in the last second. */
  window: number[];
}

interface Settings {
  latencyMs: number;
  tokenLifetimeMs: number;
  rateLimitRps: number;
}

type Route = { kind: "create" } | { kind: "revoke"; rawId: string } | { kind: "me" };

class BodyTooLarge extends Error {}

function freshState(): SandboxState {
  return { sessions: new Map(), tokens: new Map(), idempotency: new Map(), requests: [], faults: [], window: [] };
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative finite number`);
  }
  return value;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function bearer(req: IncomingMessage): string | undefined {
  const value = header(req, "authorization");
  const match = value === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

/** Reads the whole body, refusing more than MAX_BODY_BYTES. Rejects when the client aborts. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(header(req, "content-length"));
    if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Stop buffering; the answer closes the connection, so the rest is never read.
        req.pause();
        finish(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onError = (error: Error) => finish(error);
    const onClose = () => finish(new Error("client went away before the body was complete"));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** Deel's error envelope (SPEC §2), with a fresh `api_req_id`. */
function envelope(
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

class Sandbox implements DeelSandbox {
  url = "";
  origin = "";
  readonly orgToken: string;
  readonly readOnlyToken: string;
  readonly profiles: readonly string[];

  private readonly basePath: string;
  private readonly profileSet: Set<string>;
  private readonly settings: Settings;
  private st: SandboxState = freshState();
  /** Aborted on close so that latency timers end at once instead of keeping the process alive. */
  private readonly lifetime = new AbortController();
  private readonly server: Server;
  private closing: Promise<void> | undefined;

  constructor(options: SandboxOptions) {
    this.basePath = (options.basePath ?? "/rest/v2").replace(/\/+$/, "");
    if (this.basePath !== "" && !this.basePath.startsWith("/")) throw new TypeError("basePath must start with '/'");
    this.orgToken = options.orgToken ?? `deel-sandbox-org-${randomHex(16)}`;
    this.readOnlyToken = options.readOnlyToken ?? `deel-sandbox-readonly-${randomHex(16)}`;
    if (this.orgToken === this.readOnlyToken) throw new TypeError("orgToken and readOnlyToken must differ");
    const profiles = options.profiles ?? [...SEEDED_PROFILE_IDS];
    for (const id of profiles) if (!isUuid(id)) throw new TypeError(`sandbox profile ${JSON.stringify(id)} is not a UUID`);
    this.profiles = Object.freeze([...profiles]);
    this.profileSet = new Set(profiles.map((id) => id.toLowerCase()));
    this.settings = {
      latencyMs: nonNegative("latencyMs", options.latencyMs ?? 0),
      tokenLifetimeMs: nonNegative("tokenLifetimeMs", options.tokenLifetimeMs ?? DAY_MS),
      rateLimitRps: nonNegative("rateLimitRps", options.rateLimitRps ?? 5),
    };
    this.server = createServer((req, res) => {
      // A client that aborts makes these emit errors; nobody else listens, so swallow them here.
      req.on("error", () => {});
      res.on("error", () => {});
      this.dispatch(req, res).catch(() => {
        // Only reached on a bug or a socket that died mid-answer: never crash the process.
        if (!res.headersSent && !res.destroyed) {
          this.send(res, undefined, 500, envelope(req.method ?? "GET", req.url ?? "/", 500, CODES[500]!, "Internal error").body);
        } else {
          res.destroy();
        }
      });
    });
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
    this.origin = `http://${hostPart}:${address.port}`;
    this.url = `${this.origin}${this.basePath}`;
  }

  get requests(): RecordedRequest[] {
    return this.st.requests;
  }

  count(filter: { method?: string; status?: number } = {}): number {
    return this.st.requests.filter(
      (r) => (filter.method === undefined || r.method === filter.method.toUpperCase()) && (filter.status === undefined || r.status === filter.status),
    ).length;
  }

  setLatency(ms: number): void {
    this.settings.latencyMs = nonNegative("latencyMs", ms);
  }

  setTokenLifetime(ms: number): void {
    this.settings.tokenLifetimeMs = nonNegative("tokenLifetimeMs", ms);
  }

  setRateLimit(rps: number): void {
    this.settings.rateLimitRps = nonNegative("rateLimitRps", rps);
  }

  injectFault(fault: SandboxFault, options: FaultOptions = {}): void {
    const parsed = parseFault(fault);
    if (typeof parsed === "string") throw new TypeError(parsed);
    const parsedOptions = parseFaultOptions(options.times, options.method);
    if (typeof parsedOptions === "string") throw new TypeError(parsedOptions);
    this.st.faults.push({ fault: parsed, ...parsedOptions });
  }

  clearFaults(): void {
    this.st.faults = [];
  }

  state(profileId: string): { token: string; expiresAt: Date; revoked: boolean } | undefined {
    const session = this.st.sessions.get(profileId.toLowerCase());
    return session && { token: session.token, expiresAt: new Date(session.expiresAt), revoked: session.revoked };
  }

  reset(): void {
    this.st = freshState();
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.lifetime.abort();
      this.server.close(() => resolve());
      // Hung and keep-alive sockets would hold close() open forever: cut them.
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------

  private send(
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

  private sendError(
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest | undefined,
    status: number,
    message: string,
    options: { path?: string; headers?: Record<string, string> } = {},
  ): void {
    const { body } = envelope(req.method ?? "GET", req.url ?? "/", status, CODES[status] ?? "error", message, options.path);
    this.send(res, record, status, body, options.headers);
  }

  /** Waits `ms`; rejects when the sandbox closes first, so no handler outlives it. */
  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return delay(ms, undefined, { signal: this.lifetime.signal });
  }


  private route(pathname: string): { route: Route; method: string } | undefined {
    const base = this.basePath;
    if (!pathname.startsWith(`${base}/`)) return undefined;
    const rest = pathname.slice(base.length);
    if (rest === "/workers/session") return { route: { kind: "create" }, method: "POST" };
    if (rest === "/people/me") return { route: { kind: "me" }, method: "GET" };
    const match = /^\/workers\/([^/]+)\/session$/.exec(rest);
    if (match?.[1] !== undefined) return { route: { kind: "revoke", rawId: match[1] }, method: "DELETE" };
    return undefined;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? "/";
    const queryAt = rawUrl.indexOf("?");
    // The raw path on purpose: a URL parser would resolve `..` and hide what the client really sent.
    const pathname = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    if (pathname === "/__sandbox" || pathname.startsWith("/__sandbox/")) {
      await this.control(req, res, pathname);
      return;
    }

    const st = this.st;
    const method = (req.method ?? "GET").toUpperCase();
    const record: RecordedRequest = { method, path: rawUrl, status: 0, at: Date.now() };
    const idempotencyKey = header(req, "idempotency-key");
    if (idempotencyKey !== undefined) record.idempotencyKey = idempotencyKey;
    const requestId = header(req, "x-request-id");
    if (requestId !== undefined) record.requestId = requestId;
    st.requests.push(record);
    // A long-running local sandbox must not grow without bound: keep the most recent requests.
    if (st.requests.length > MAX_RECORDED_REQUESTS) st.requests.splice(0, st.requests.length - MAX_RECORDED_REQUESTS);

    const matched = this.route(pathname);
    if (!matched) return this.sendError(req, res, record, 404, "Not found");
    if (matched.method !== method) {
      return this.sendError(req, res, record, 405, "Method not allowed", { headers: { allow: matched.method } });
    }
    const { route } = matched;
    if (route.kind === "me") return this.me(req, res, record, st);

    // Authenticate: the token must belong to the organization.
    const token = bearer(req);
    if (token !== this.orgToken && token !== this.readOnlyToken) {
      return this.sendError(req, res, record, 401, "Unauthorized");
    }
    // Per-organization rolling one-second window over accepted requests; no rate-limit headers.
    if (this.settings.rateLimitRps > 0) {
      const now = Date.now();
      while (st.window.length > 0 && st.window[0]! <= now - 1000) st.window.shift();
      if (st.window.length >= this.settings.rateLimitRps) {
        return this.sendError(req, res, record, 429, "Too many requests");
      }
      st.window.push(now);
    }
    // Authorize: the read-only token lacks admin:worker.
    if (token !== this.orgToken) {
      return this.sendError(req, res, record, 403, "The token lacks the admin:worker scope");
    }

    const fault = this.takeFault(st, method);
    if (fault) return this.applyFault(req, res, record, fault);

    if (route.kind === "create") return this.create(req, res, record, st);
    return this.revoke(req, res, record, st, route.rawId);
  }

  private takeFault(st: SandboxState, method: string): SandboxFault | undefined {
    const index = st.faults.findIndex((f) => f.remaining > 0 && (f.method === undefined || f.method === method));
    const active = st.faults[index];
    if (!active) return undefined;
    active.remaining -= 1;
    if (active.remaining <= 0) st.faults.splice(index, 1);
    return active.fault;
  }

  private applyFault(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, fault: SandboxFault): void {
    switch (fault.kind) {
      case "status":
        return this.sendError(req, res, record, fault.status, fault.status >= 500 ? "Internal server error" : "Injected error");
      case "rate_limit":
        return this.sendError(req, res, record, 429, "Too many requests", {
          headers: fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) },
        });
      case "non_json": {
        const status = fault.status ?? 502;
        const html = `<!DOCTYPE html><html><head><title>${status}</title></head><body><h1>${status}</h1><p>upstream trouble</p></body></html>`;
        return this.send(res, record, status, html, {}, "text/html; charset=utf-8");
      }
      case "raw":
        return this.send(res, record, fault.status, fault.body, fault.headers ?? {}, fault.contentType ?? "application/json");
      case "hang":
        // Leave the request open; close() or the client ends it. Status stays 0.
        return;
      case "reset":
        record.status = 0;
        req.socket.destroy();
        return;
    }
  }

  private async me(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, st: SandboxState): Promise<void> {
    const token = bearer(req);
    const profileId = token === undefined ? undefined : st.tokens.get(token);
    const session = profileId === undefined ? undefined : st.sessions.get(profileId);
    if (profileId === undefined || !session || session.token !== token || session.revoked || session.expiresAt.getTime() <= Date.now()) {
      return this.sendError(req, res, record, 401, "Unauthorized");
    }
    const index = this.profiles.findIndex((id) => id.toLowerCase() === profileId);
    const body = JSON.stringify({
      data: {
        id: this.profiles[index] ?? profileId,
        full_name: `Sandbox Worker ${index + 1}`,
        email: `worker${index + 1}@sandbox.invalid`,
      },
    });
    this.send(res, record, 200, body);
  }

  private async create(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, st: SandboxState): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        return this.sendError(req, res, record, 413, "Request body too large", { headers: { connection: "close" } });
      }
      return; // the client went away
    }

    const key = record.idempotencyKey;
    if (key !== undefined && (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH)) {
      await this.sleep(this.settings.latencyMs);
      return this.sendError(req, res, record, 400, `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`, {
        path: "headers.idempotency-key",
      });
    }

    // The idempotency decision is taken at arrival, before the latency, so that a retry sent while the
    // first call is still being processed sees it as in flight.
    const marker: IdempotencyEntry = { state: "in_flight" };
    if (key !== undefined) {
      const entry = st.idempotency.get(key);
      if (entry?.state === "done" && entry.at + DAY_MS > Date.now()) {
        await this.sleep(this.settings.latencyMs);
        return this.send(res, record, entry.status, entry.body, { "x-original-request-id": entry.apiReqId });
      }
      if (entry?.state === "in_flight") {
        await this.sleep(this.settings.latencyMs);
        return this.sendError(req, res, record, 429, "A request with this Idempotency-Key is in progress", {
          headers: { "retry-after": "1" },
        });
      }
      st.idempotency.set(key, marker);
      // Bounded like Deel's own window: forget the oldest keys past this many (local runs last long).
      if (st.idempotency.size > MAX_IDEMPOTENCY_KEYS) {
        const oldest = st.idempotency.keys().next().value;
        if (oldest !== undefined) st.idempotency.delete(oldest);
      }
    }

    try {
      await this.sleep(this.settings.latencyMs);
      const outcome = this.mint(st, body);
      if ("error" in outcome) {
        return this.sendError(req, res, record, outcome.error, outcome.message, { path: outcome.path });
      }
      const apiReqId = randomHex(16);
      if (key !== undefined) st.idempotency.set(key, { state: "done", status: 201, body: outcome.body, apiReqId, at: Date.now() });
      this.send(res, record, 201, outcome.body);
    } finally {
      // Failed attempts are not stored: a retry with the same key is processed fresh.
      if (key !== undefined && st.idempotency.get(key) === marker) st.idempotency.delete(key);
    }
  }

  /** Validates a mint body and, when valid, replaces the profile's token. */
  private mint(st: SandboxState, raw: Buffer): { body: string } | { error: number; message: string; path?: string } {
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
    if (!this.profileSet.has(id)) return { error: 404, message: "Worker profile not found", path: "data.profile_id" };

    const previous = st.sessions.get(id);
    if (previous) st.tokens.delete(previous.token); // one token per worker: the old one stops working
    const token = randomBytes(32).toString("base64url");
    const expiresAt = new Date(Date.now() + this.settings.tokenLifetimeMs);
    st.sessions.set(id, { token, expiresAt, revoked: false });
    st.tokens.set(token, id);
    return { body: JSON.stringify({ data: { token, expires_at: expiresAt.toISOString() } }) };
  }

  private async revoke(
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    st: SandboxState,
    rawId: string,
  ): Promise<void> {
    try {
      await readBody(req); // drained and ignored, so the connection can be reused
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        return this.sendError(req, res, record, 413, "Request body too large", { headers: { connection: "close" } });
      }
      return;
    }
    await this.sleep(this.settings.latencyMs);
    let profileId: string;
    try {
      profileId = decodeURIComponent(rawId);
    } catch {
      return this.sendError(req, res, record, 400, "profile_id must be a UUID", { path: "profile_id" });
    }
    if (!isUuid(profileId)) return this.sendError(req, res, record, 400, "profile_id must be a UUID", { path: "profile_id" });
    const id = profileId.toLowerCase();
    if (!this.profileSet.has(id)) return this.sendError(req, res, record, 404, "Worker profile not found", { path: "profile_id" });
    const session = st.sessions.get(id);
    if (session) session.revoked = true; // no live token: still 204 (Deel documents nothing else)
    this.send(res, record, 204, "");
  }

  // --- HTTP control surface --------------------------------------------------------------------

  private async control(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const method = (req.method ?? "GET").toUpperCase();
    const token = bearer(req);
    if (token !== this.orgToken) {
      return this.sendError(req, res, undefined, token === this.readOnlyToken ? 403 : 401, "Control routes need the organization token");
    }
    let body: unknown;
    try {
      const raw = await readBody(req);
      body = raw.length === 0 ? undefined : JSON.parse(raw.toString("utf8"));
    } catch (error) {
      if (error instanceof SyntaxError) return this.sendError(req, res, undefined, 400, "Body is not valid JSON");
      if (error instanceof BodyTooLarge) return this.sendError(req, res, undefined, 413, "Request body too large", { headers: { connection: "close" } });
      return;
    }
    const object = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
    const json = (status: number, value: unknown) => this.send(res, undefined, status, JSON.stringify(value));

    if (pathname === "/__sandbox/faults" && method === "POST") {
      const fault = parseFault(object.fault);
      if (typeof fault === "string") return this.sendError(req, res, undefined, 400, fault, { path: "fault" });
      const options = parseFaultOptions(object.times, object.method);
      if (typeof options === "string") return this.sendError(req, res, undefined, 400, options);
      this.st.faults.push({ fault, ...options });
      return this.send(res, undefined, 204, "");
    }
    if (pathname === "/__sandbox/faults" && method === "DELETE") {
      this.clearFaults();
      return this.send(res, undefined, 204, "");
    }
    if (pathname === "/__sandbox/settings" && (method === "PUT" || method === "GET")) {
      if (method === "PUT") {
        const updates: Partial<Settings> = {};
        for (const name of ["latencyMs", "tokenLifetimeMs", "rateLimitRps"] as const) {
          const value = object[name];
          if (value === undefined) continue;
          if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
            return this.sendError(req, res, undefined, 400, `${name} must be a non-negative number`, { path: name });
          }
          updates[name] = value;
        }
        Object.assign(this.settings, updates);
      }
      return json(200, { ...this.settings });
    }
    const stateMatch = /^\/__sandbox\/state\/([^/]+)$/.exec(pathname);
    if (stateMatch?.[1] !== undefined && method === "GET") {
      let id: string;
      try {
        id = decodeURIComponent(stateMatch[1]);
      } catch {
        return this.sendError(req, res, undefined, 400, "profile id must be a UUID");
      }
      const state = this.state(id);
      // Never the token: out-of-process callers only learn whether and until when one is live.
      if (!state) return this.sendError(req, res, undefined, 404, "No session was ever minted for this profile");
      return json(200, { expiresAt: state.expiresAt.toISOString(), revoked: state.revoked });
    }
    if (pathname === "/__sandbox/requests" && method === "GET") return json(200, { data: this.st.requests });
    if (pathname === "/__sandbox/reset" && method === "POST") {
      this.reset();
      return this.send(res, undefined, 204, "");
    }
    return this.sendError(req, res, undefined, 404, "Unknown control route");
  }
}

/**
 * Starts a Deel sandbox on loopback (by default on a random port) and resolves once it listens.
 * Close it with `close()`; it prints nothing.
 */
export async function startDeelSandbox(options: SandboxOptions = {}): Promise<DeelSandbox> {
  const sandbox = new Sandbox(options);
  await sandbox.listen(options.host ?? "127.0.0.1", options.port ?? 0);
  return sandbox;
}
