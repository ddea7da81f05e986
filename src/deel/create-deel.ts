import type { Config } from "../config.js";
import type { BreakerState } from "./breaker.js";
import type { OutboundBudget } from "./budget.js";
import { DeelClient } from "./client.js";
import { ResilientDeel, type DeelObserver } from "./resilient.js";
import type { DeelApi } from "./types.js";

export type { DeelEvent, DeelObserver } from "./resilient.js";
export type { BreakerState } from "./breaker.js";

/** The Deel API as the gateway uses it, and how to let go of its connections. */
export interface DeelStack {
  /** Deadline, budget, retries and circuit breaker around the HTTP client. */
  api: DeelApi;
  /** Read-only state for metrics: the circuit, and calls waiting for a budget slot in this process. */
  state(): { breaker: BreakerState; budgetQueueDepth: number };
  /** Adds an observer of attempts, refusals and breaker transitions; returns its removal. */
  observe(observer: DeelObserver): () => void;
  /** Closes the HTTP pool. The budget belongs to the infrastructure, which closes it. */
  close(): Promise<void>;
}

/** Builds the Deel client for `config`, paced by `budget` when there is one. Watch it with `observe()`. */
export function createDeelStack(config: Config, budget: OutboundBudget | null): DeelStack {
  const { deel } = config;
  const client = new DeelClient({ baseUrl: deel.apiUrl, token: deel.token, timeoutMs: deel.timeoutMs });
  const api = new ResilientDeel(client, {
    timeoutMs: deel.timeoutMs,
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
