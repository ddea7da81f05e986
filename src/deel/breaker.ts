/**
 * A small circuit breaker in front of Deel: after `threshold` consecutive upstream failures (5xx,
 * timeouts, connection errors, garbled answers; never a 4xx) it opens, and calls fail fast without
 * reaching Deel. After `cooldownMs` it lets exactly one probe through (half-open): a probe that
 * succeeds closes it, one that fails opens it again for another cooldown.
 *
 * Every attempt is one breaker call (retries included), so an outage stops a retry storm early.
 */
import { systemClock, type Clock } from "../base/clock.js";
import { DeelError } from "./errors.js";

export type BreakerState = "closed" | "open" | "half_open";

/** How an attempt ended, as far as Deel's health goes. */
export type BreakerOutcome =
  /** Deel answered coherently (2xx, or any 4xx including 429). */
  | "success"
  /** Deel failed: 5xx, timeout, connection error, a garbled answer. */
  | "failure"
  /** Says nothing about Deel (our caller gave up, our own input check). */
  | "neutral";

export interface BreakerOptions {
  /** Consecutive failures that open the circuit; 0 disables the breaker. */
  threshold: number;
  /** How long an open circuit refuses calls before it lets one probe through. */
  cooldownMs: number;
  /** Where the time comes from. Default: the real clock. */
  clock?: Pick<Clock, "now">;
  /** Called on every change of state; must be quick, and what it throws is ignored. */
  onTransition?: (from: BreakerState, to: BreakerState) => void;
}

/** Permission for one attempt; report how it ended exactly once. */
export interface BreakerPermit {
  done(outcome: BreakerOutcome): void;
}

const NOOP_PERMIT: BreakerPermit = { done: () => undefined };

/** See the module comment. The cooldown is measured on the clock passed in. */
export class CircuitBreaker {
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly clock: Pick<Clock, "now">;
  private readonly onTransition: ((from: BreakerState, to: BreakerState) => void) | undefined;
  private current: BreakerState = "closed";
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(options: BreakerOptions) {
    if (!Number.isInteger(options.threshold) || options.threshold < 0) throw new TypeError("CircuitBreaker: threshold must be a non-negative integer");
    if (!(options.cooldownMs > 0)) throw new TypeError("CircuitBreaker: cooldownMs must be positive");
    this.threshold = options.threshold;
    this.cooldownMs = options.cooldownMs;
    this.clock = options.clock ?? systemClock;
    this.onTransition = options.onTransition;
  }

  /** The state now (an open circuit whose cooldown has passed reads as half_open). */
  get state(): BreakerState {
    if (this.current === "open" && this.clock.now() - this.openedAt >= this.cooldownMs) this.move("half_open");
    return this.current;
  }

  /** Throws the fail-fast error when an attempt would not be admitted now; takes nothing. */
  check(): void {
    const state = this.state;
    if (state === "open" || (state === "half_open" && this.probing)) throw this.openError();
  }

  /** Admits one attempt (in half_open: the one probe) or throws the fail-fast `unavailable` error. */
  admit(): BreakerPermit {
    if (this.threshold === 0) return NOOP_PERMIT;
    this.check();
    const probe = this.current === "half_open";
    if (probe) this.probing = true;
    let reported = false;
    return {
      done: (outcome) => {
        if (reported) return;
        reported = true;
        this.record(outcome, probe);
      },
    };
  }

  private record(outcome: BreakerOutcome, probe: boolean): void {
    if (probe) this.probing = false;
    if (outcome === "neutral") return;
    // Only the probe moves a circuit that is not closed: an attempt admitted before the circuit
    // opened, and ending after, changes nothing.
    if (outcome === "success") {
      if (this.current === "closed") this.failures = 0;
      else if (probe && this.current === "half_open") this.move("closed");
      return;
    }
    this.failures += 1;
    if ((probe && this.current === "half_open") || (this.current === "closed" && this.failures >= this.threshold)) {
      this.openedAt = this.clock.now();
      this.move("open");
    }
  }

  private move(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    if (to === "closed") this.failures = 0;
    try {
      this.onTransition?.(from, to);
    } catch {
      // An observer must never break a call.
    }
  }

  private openError(): DeelError {
    const left = Math.max(0, this.openedAt + this.cooldownMs - this.clock.now());
    return new DeelError("unavailable", `Circuit open: Deel failed ${this.threshold} times in a row; calls fail fast (probe in ${left}ms)`, {
      retryAfterSeconds: Math.max(1, Math.ceil(left / 1000)),
    });
  }
}
