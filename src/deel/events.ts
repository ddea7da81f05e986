/**
 * What the resilience layer (resilient.ts) reports about calls to Deel, for metrics and logs:
 * attempts, refusals and circuit-breaker transitions. Types only; observers must be quick and never throw.
 */
import type { BreakerState } from "./breaker.js";
import type { DeelEndpoint } from "../base/deel-endpoints.js";
import type { DeelErrorKind } from "./errors.js";

export type { DeelEndpoint } from "../base/deel-endpoints.js";

/** What the resilience layer reports, for metrics and logs. Observers must be quick and never throw. */
export type DeelEvent =
  | { type: "attempt_start"; endpoint: DeelEndpoint; attempt: number; budgetWaitMs: number }
  | {
      type: "attempt_end";
      endpoint: DeelEndpoint;
      attempt: number;
      /** `ok`, or the failure's kind. */
      outcome: "ok" | DeelErrorKind | "error";
      /**
       * HTTP status Deel answered; absent when no answer came (timeout, connection error). A success
       * reads 201 (create, magic link) or 204 (revoke; Deel's rarer `200 {}` is reported as 204 too).
       */
      status?: number;
      durationMs: number;
      /** Set when another attempt follows after this many ms. */
      retryInMs?: number;
    }
  /** A call refused without reaching Deel: open circuit, no budget slot in time, deadline passed. */
  | { type: "rejected"; endpoint: DeelEndpoint; attempt: number; reason: "breaker_open" | "budget" | "deadline" }
  | { type: "breaker"; from: BreakerState; to: BreakerState };

export type DeelObserver = (event: DeelEvent) => void;
