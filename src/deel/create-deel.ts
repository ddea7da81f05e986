import { systemClock, type Clock } from "../base/clock.js";
import type { BreakerState } from "./breaker.js";
import type { OutboundBudget } from "./budget.js";
import { DeelClient } from "./client.js";
import { ResilientDeel, type DeelObserver } from "./resilient.js";
import type { DeelApi } from "./types.js";

export type { DeelEvent, DeelObserver } from "./resilient.js";
export type { BreakerState } from "./breaker.js";

/** How the gateway calls Deel (config.deel): where, with which token, and how patiently. */
export interface DeelSettings {
  readonly apiUrl: string;
  /** The organization token. Empty only in local mode before the sandbox is started. */
  readonly token: string;
  readonly timeoutMs: number;
  /** The organization's Deel budget (requests per rolling second); 0 turns pacing off. */
  readonly rateLimitRps: number;
  /** Added to the budget's one-second window, for network jitter between us and Deel's clock. */
  readonly rateLimitMarginMs: number;
  /** Attempts per call, the first included (1 = never retry). */
  readonly maxAttempts: number;
  /** First retry backoff; doubles per retry, with jitter, capped, and always inside the deadline. */
  readonly retryBaseMs: number;
  /** Consecutive upstream failures (5xx, timeouts, connection errors) that open the circuit; 0 = no breaker. */
  readonly breakerThreshold: number;
  /** How long an open circuit fails fast before one probe call is let through. */
  readonly breakerCooldownMs: number;
}

/** The Deel API as the gateway uses it, and how to let go of its connections. */
export interface ResilientDeelHandle {
  /** Deadline, budget, retries and circuit breaker around the HTTP client. */
  api: DeelApi;
  /** Read-only state for metrics: the circuit, and calls waiting for a budget slot in this process. */
  state(): { breaker: BreakerState; budgetQueueDepth: number };
  /** Adds an observer of attempts, refusals and breaker transitions; returns its removal. */
  observe(observer: DeelObserver): () => void;
  /** Closes the HTTP pool. The budget belongs to the infrastructure, which closes it. */
  close(): Promise<void>;
}

/**
 * Builds the Deel client for `deel`, paced by `budget` when there is one. Watch it with `observe()`.
 * `clock` times both layers: the deadline the resilience layer computes is the one the HTTP client
 * aborts at, so they must read the same time.
 */
export function createResilientDeel(
  deel: DeelSettings,
  budget: OutboundBudget | null,
  clock: Clock = systemClock,
  /** Decorates the HTTP client the resilience layer calls once per attempt (the tracing layer's spans). */
  wrapClient: (client: DeelApi) => DeelApi = (client) => client,
): ResilientDeelHandle {
  const client = new DeelClient({ baseUrl: deel.apiUrl, token: deel.token, timeoutMs: deel.timeoutMs, clock });
  const api = new ResilientDeel(wrapClient(client), {
    timeoutMs: deel.timeoutMs,
    clock,
    budget,
    maxAttempts: deel.maxAttempts,
    retryBaseMs: deel.retryBaseMs,
    breakerThreshold: deel.breakerThreshold,
    breakerCooldownMs: deel.breakerCooldownMs,
  });
  return {
    api,
    state: () => ({ breaker: api.breakerState, budgetQueueDepth: api.budgetQueueDepth }),
    observe: (observer) => api.observe(observer),
    close: () => client.close(),
  };
}
