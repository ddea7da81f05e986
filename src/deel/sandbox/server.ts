/**
 * The built-in Deel sandbox: a real node:http server that behaves like Deel's worker-session API
 * (mint, revoke, `/people/me`, error envelope, per-organization rate limit, idempotency), with fault
 * injection for tests and benchmarks. It backs local mode, the test suites and the benchmark.
 *
 * This file holds the server and its in-process API; the routes live in `deel-routes.ts` (Deel's
 * API) and `control-routes.ts` (`/__sandbox/…`), faults in `faults.ts`, idempotency in
 * `idempotency-store.ts`, and the HTTP helpers in `http.ts`.
 *
 * The sandbox never logs and never returns a token except in a mint answer (and through the
 * in-process `state()` helper, which tests use to compare with what the gateway handed out).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { systemClock, type Clock } from "../../base/clock.js";
import { isUuid } from "../../base/profile-id.js";
import { handleControl } from "./control-routes.js";
import { handleDeelRequest } from "./deel-routes.js";
import { parseFault, parseFaultOptions, type FaultOptions, type SandboxFault } from "./faults.js";
import { randomHex, sendError } from "./http.js";
import { DAY_MS, freshState, nonNegative, sessionOf, type RecordedRequest, type SandboxCore } from "./state.js";

export type { SandboxFault, FaultOptions } from "./faults.js";
export type { RecordedRequest } from "./state.js";

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
  /**
   * The sandbox's time: arrival times, the rate window, token and link lifetimes, idempotency
   * expiry and the latency it waits. Default: the real clock. A test that hands in its own decides
   * when a window ends or a token expires.
   */
  clock?: Clock;
}

/** A running sandbox. */
export interface DeelSandbox {
  /** Base URL including the base path, e.g. `http://127.0.0.1:PORT/rest/v2`. */
  url: string;
  /** `http://host:port`: the control routes live at `${origin}/__sandbox/…`. */
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

class Sandbox implements DeelSandbox {
  url = "";
  origin = "";
  readonly orgToken: string;
  readonly readOnlyToken: string;
  readonly profiles: readonly string[];

  private readonly core: SandboxCore;
  /** Aborted on close so that latency timers end at once instead of keeping the process alive. */
  private readonly lifetime = new AbortController();
  private readonly server: Server;
  private closing: Promise<void> | undefined;

  constructor(options: SandboxOptions) {
    const basePath = (options.basePath ?? "/rest/v2").replace(/\/+$/, "");
    if (basePath !== "" && !basePath.startsWith("/")) throw new TypeError("basePath must start with '/'");
    this.orgToken = options.orgToken ?? `deel-sandbox-org-${randomHex(16)}`;
    this.readOnlyToken = options.readOnlyToken ?? `deel-sandbox-readonly-${randomHex(16)}`;
    if (this.orgToken === this.readOnlyToken) throw new TypeError("orgToken and readOnlyToken must differ");
    const profiles = options.profiles ?? [...SEEDED_PROFILE_IDS];
    for (const id of profiles) if (!isUuid(id)) throw new TypeError(`sandbox profile ${JSON.stringify(id)} is not a UUID`);
    this.profiles = Object.freeze([...profiles]);
    const signal = this.lifetime.signal;
    const clock = options.clock ?? systemClock;
    this.core = {
      basePath,
      orgToken: this.orgToken,
      readOnlyToken: this.readOnlyToken,
      profiles: this.profiles,
      profileSet: new Set(profiles.map((id) => id.toLowerCase())),
      settings: {
        latencyMs: nonNegative("latencyMs", options.latencyMs ?? 0),
        tokenLifetimeMs: nonNegative("tokenLifetimeMs", options.tokenLifetimeMs ?? DAY_MS),
        rateLimitRps: nonNegative("rateLimitRps", options.rateLimitRps ?? 5),
      },
      st: freshState(clock),
      clock,
      sleep: (ms) => (ms <= 0 ? Promise.resolve() : clock.sleep(ms, signal)),
    };
    this.server = createServer((req, res) => {
      // A client that aborts makes these emit errors; nobody else listens, so swallow them here.
      req.on("error", () => {});
      res.on("error", () => {});
      this.dispatch(req, res).catch(() => {
        // Only reached on a bug or a socket that died mid-answer: never crash the process.
        if (!res.headersSent && !res.destroyed) sendError(req, res, undefined, 500, "Internal error");
        else res.destroy();
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
    this.url = `${this.origin}${this.core.basePath}`;
  }

  get requests(): RecordedRequest[] {
    return this.core.st.requests;
  }

  count(filter: { method?: string; status?: number } = {}): number {
    return this.core.st.requests.filter(
      (r) => (filter.method === undefined || r.method === filter.method.toUpperCase()) && (filter.status === undefined || r.status === filter.status),
    ).length;
  }

  setLatency(ms: number): void {
    this.core.settings.latencyMs = nonNegative("latencyMs", ms);
  }

  setTokenLifetime(ms: number): void {
    this.core.settings.tokenLifetimeMs = nonNegative("tokenLifetimeMs", ms);
  }

  setRateLimit(rps: number): void {
    this.core.settings.rateLimitRps = nonNegative("rateLimitRps", rps);
  }

  injectFault(fault: SandboxFault, options: FaultOptions = {}): void {
    const parsed = parseFault(fault);
    if (typeof parsed === "string") throw new TypeError(parsed);
    const parsedOptions = parseFaultOptions(options.times, options.method, options.route);
    if (typeof parsedOptions === "string") throw new TypeError(parsedOptions);
    this.core.st.faults.push({ fault: parsed, ...parsedOptions });
  }

  clearFaults(): void {
    this.core.st.faults = [];
  }

  state(profileId: string): { token: string; expiresAt: Date; revoked: boolean } | undefined {
    return sessionOf(this.core.st, profileId);
  }

  reset(): void {
    this.core.st = freshState(this.core.clock);
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

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? "/";
    const queryAt = rawUrl.indexOf("?");
    // The raw path on purpose: a URL parser would resolve `..` and hide what the client really sent.
    const pathname = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    if (pathname === "/__sandbox" || pathname.startsWith("/__sandbox/")) return handleControl(this.core, req, res, pathname);
    return handleDeelRequest(this.core, req, res, rawUrl, pathname);
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
