/**
 * What a running Deel sandbox knows: the state `reset()` forgets, the settings a test may change
 * while it runs, and the core that the route handlers share with the server.
 */
import type { Clock } from "../../base/clock.js";
import { IdempotencyStore } from "./idempotency-store.js";

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
   * `contentType` defaults to `application/json`; `headers` lets a test send e.g. an HTTP-date
   * `Retry-After`.
   */
  | { kind: "raw"; status: number; body: string; contentType?: string; headers?: Record<string, string> };

/** Options of one injected fault. */
export interface FaultOptions {
  /** How many matching requests the fault applies to. Default: every one (Infinity). */
  times?: number;
  /** Only requests with this method. Default: both POST and DELETE. */
  method?: "POST" | "DELETE";
  /** Only requests to this route (`magic_link` is `POST /magic-link`). Default: every route faults apply to. */
  route?: FaultRoute;
}

/** The routes a fault can be limited to. */
export type FaultRoute = "create" | "revoke" | "magic_link";

/** An injected fault with its remaining uses. */
export interface ActiveFault {
  fault: SandboxFault;
  remaining: number;
  method?: "POST" | "DELETE";
  route?: FaultRoute;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

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
  /** When it arrived, on the sandbox's clock (epoch ms). */
  at: number;
  /**
   * For an accepted `POST /magic-link`: whose live token authorized it (its SHA-256, never the
   * token), and what the body asked for.
   */
  magicLink?: { profileId: string; tokenSha256: string; redirectPath: string; onSuccessRedirectUrl?: string };
}

/** A worker's current token, as Deel sees it. */
export interface Session {
  token: string;
  expiresAt: Date;
  revoked: boolean;
}

/** Everything `reset()` forgets. In-flight handlers keep the object they started with. */
export interface SandboxState {
  /** Lower-cased profile id → its current session. */
  sessions: Map<string, Session>;
  /** Current token → lower-cased profile id (a replaced token is removed). */
  tokens: Map<string, string>;
  idempotency: IdempotencyStore;
  requests: RecordedRequest[];
  faults: ActiveFault[];
  /** Arrival times of the requests the rate limiter accepted in the last second. */
  window: number[];
}

/** Settings that apply from the next request on. */
export interface Settings {
  latencyMs: number;
  tokenLifetimeMs: number;
  /** Requests per rolling second per organization; `0` turns the limit off. */
  rateLimitRps: number;
}

/** What the route handlers share with the server that owns them. */
export interface SandboxCore {
  /** Path prefix of the REST API, without a trailing slash. */
  readonly basePath: string;
  readonly orgToken: string;
  readonly readOnlyToken: string;
  /** Known profile ids as configured. */
  readonly profiles: readonly string[];
  /** The same ids, lower-cased, for lookups. */
  readonly profileSet: ReadonlySet<string>;
  /** Live settings (mutated in place). */
  readonly settings: Settings;
  /** The current state; `reset()` replaces it. */
  st: SandboxState;
  /** The sandbox's time: arrivals, the rate window, token and link lifetimes, idempotency expiry. */
  readonly clock: Clock;
  /** Waits `ms` on the clock; rejects when the sandbox closes first, so no handler outlives it. */
  sleep(ms: number): Promise<void>;
}

/** An empty state on `clock`: no sessions, idempotency records, requests, faults or rate window. */
export function freshState(clock: Clock): SandboxState {
  return { sessions: new Map(), tokens: new Map(), idempotency: new IdempotencyStore(clock), requests: [], faults: [], window: [] };
}

/** Deel's view of a profile's current token (a copy), or undefined when none was ever minted. */
export function sessionOf(st: SandboxState, profileId: string): Session | undefined {
  const session = st.sessions.get(profileId.toLowerCase());
  return session && { token: session.token, expiresAt: new Date(session.expiresAt), revoked: session.revoked };
}

/** Returns `value` when it is a non-negative finite number; throws a TypeError naming the setting otherwise. */
export function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative finite number`);
  }
  return value;
}
