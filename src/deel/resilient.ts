/**
 * Resilience toward Deel: a `DeelApi` around `DeelClient` that applies, per call,
 *
 *   one deadline → for each attempt: breaker check → budget slot → breaker admit → HTTP attempt
 *                → on a retryable failure: backoff (or Retry-After) if it fits the deadline, again.
 *
 * - Deadline: `timeoutMs` from `CallOptions.startedAt` (or from arrival), capped by
 *   `CallOptions.deadline`, computed once per call, here and nowhere else. Budget waits, backoff
 *   sleeps and attempts all fit inside it; every attempt is handed that same absolute deadline, and
 *   the client only turns it into an abort of the undici request. No attempt starts with less than
 *   `reserveMs` left, checked on the clock before each attempt and again after each wait.
 * - Retries and waits: see retry-policy.ts. `unavailable` and `rate_limited` are retried, a garbled
 *   2xx once; 400/401/403/404 and other answers never. Every POST carries an Idempotency-Key, re-sent
 *   unchanged, so Deel replays a success instead of minting a second token. A wait that does not fit
 *   ends the call with the last error (a 429 → `rate_limited` with `retryAfterSeconds`).
 *   `CallOptions.maxAttempts` lowers the attempts of one call (a caller with its own retries passes 1).
 *   `POST /magic-link` is the exception: Deel takes no Idempotency-Key there, and it is retried by
 *   the same rules all the same. A retry after a lost answer makes a second link for the same worker
 *   token; that is harmless: the caller receives one link only, the other is never seen by anyone,
 *   and both expire within minutes. A 401/403 there (the worker token is dead) is never retried.
 * - Budget: a slot is taken before *every* attempt. A slot that cannot start `reserveMs` before the
 *   deadline fails the call at once with `rate_limited` (or, on a retry, with the last upstream error).
 * - Breaker: see breaker.ts; every attempt is one breaker call.
 * - `mayHaveMinted`: the error that ends a call carries the OR over its attempts' (see errors.ts),
 *   never just the last one's; a call refused before any attempt left carries false.
 * - Events: see events.ts; observers added with `observe()` see every attempt and refusal.
 *
 * This module never imports graphql; every failure stays a `DeelError`.
 */
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import { DEEL_ENDPOINTS, type DeelEndpoint } from "../base/deel-endpoints.js";
import type { ProfileId } from "../base/profile-id.js";
import type { OutboundBudget } from "./budget.js";
import { CircuitBreaker, type BreakerOutcome, type BreakerPermit, type BreakerState } from "./breaker.js";
import { DeelError, deelJudgedRequest, isDeelError, withMayHaveMinted } from "./errors.js";
import type { DeelEvent, DeelObserver } from "./events.js";
import { RetryPolicy, withRetryAfter } from "./retry-policy.js";
import type { CallOptions, DeelApi, MagicLink, MagicLinkRequest, MintedSession, DeelRevocation } from "./types.js";

export type { DeelEndpoint, DeelEvent, DeelObserver } from "./events.js";

export interface ResilientDeelOptions {
  /** Whole-call deadline (`DEEL_TIMEOUT_MS`). */
  timeoutMs: number;
  /** Attempts per call, the first included. Default 3. */
  maxAttempts?: number;
  /** First backoff (doubles per retry, jittered). Default 200 ms. */
  retryBaseMs?: number;
  /** Largest backoff without Retry-After. Default 5000 ms. */
  retryMaxMs?: number;
  /** Least time an attempt must have left for a slot or a retry to be worth it. Default min(1000, timeoutMs / 4). */
  reserveMs?: number;
  /** Outbound budget, or null for no pacing. */
  budget: OutboundBudget | null;
  /** Consecutive failures that open the circuit (0: no breaker). Default 5. */
  breakerThreshold?: number;
  /** Default 10 000 ms. */
  breakerCooldownMs?: number;
  /** Where the time comes from, and how waits sleep (deadline, backoff, breaker cooldown). Default: the real clock. */
  clock?: Clock;
  /** For tests: a source of randomness in [0, 1). */
  random?: () => number;
}

const { createSession: CREATE, revokeSession: REVOKE, createMagicLink: MAGIC_LINK } = DEEL_ENDPOINTS;

/**
 * A `DeelApi` with the same shape as the client it wraps, that applies the deadline, budget, retries
 * and breaker described in the module comment. Events go to the observers added with `observe()`.
 */
export class ResilientDeel implements DeelApi {
  private readonly client: DeelApi;
  private readonly budget: OutboundBudget | null;
  private readonly breaker: CircuitBreaker;
  private readonly timeoutMs: number;
  private readonly reserveMs: number;
  private readonly retry: RetryPolicy;
  private readonly clock: Clock;
  private readonly observers = new Set<DeelObserver>();
  /** Calls waiting for a budget slot: released at once when the circuit opens. */
  private readonly waitingForSlot = new Set<() => void>();

  constructor(client: DeelApi, options: ResilientDeelOptions) {
    if (!(options.timeoutMs > 0)) throw new TypeError("ResilientDeel: timeoutMs must be positive");
    this.client = client;
    this.budget = options.budget;
    this.timeoutMs = options.timeoutMs;
    this.reserveMs = options.reserveMs ?? Math.min(1000, Math.floor(options.timeoutMs / 4));
    this.clock = options.clock ?? systemClock;
    this.retry = new RetryPolicy({
      maxAttempts: Math.max(1, Math.floor(options.maxAttempts ?? 3)),
      baseMs: options.retryBaseMs ?? 200,
      maxMs: options.retryMaxMs ?? 5000,
      reserveMs: this.reserveMs,
      clock: this.clock,
      random: options.random ?? Math.random,
    });
    this.breaker = new CircuitBreaker({
      threshold: options.breakerThreshold ?? 5,
      cooldownMs: options.breakerCooldownMs ?? 10_000,
      clock: this.clock,
      onTransition: (from, to) => {
        this.emit({ type: "breaker", from, to });
        if (to === "open") for (const release of [...this.waitingForSlot]) release();
      },
    });
  }

  /** The circuit's state: `closed`, `open` or `half_open`. */
  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  /** Calls waiting for a budget slot in this process. */
  get budgetQueueDepth(): number {
    return this.budget?.queueDepth ?? 0;
  }

  /** Adds an observer; returns a function that removes it. */
  observe(observer: DeelObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  createSession(profileId: ProfileId, idempotencyKey: string, options: CallOptions = {}): Promise<MintedSession> {
    // The same key on every attempt: that is what makes a retried POST safe.
    return this.call(CREATE, options, (attempt) => this.client.createSession(profileId, idempotencyKey, attempt));
  }

  revokeSession(profileId: ProfileId, options: CallOptions = {}): Promise<DeelRevocation> {
    return this.call(REVOKE, options, (attempt) => this.client.revokeSession(profileId, attempt));
  }

  /**
   * The magic link, under the same deadline, budget, retries and breaker. Pass the create's
   * `startedAt`: one deadline then covers the mint and the link together.
   */
  createMagicLink(workerToken: string, request: MagicLinkRequest, options: CallOptions = {}): Promise<MagicLink> {
    const { client } = this;
    if (client.createMagicLink === undefined) return Promise.reject(new TypeError("ResilientDeel: the wrapped client cannot create magic links"));
    return this.call(MAGIC_LINK, options, (attempt) => client.createMagicLink!(workerToken, request, attempt));
  }

  // ---------------------------------------------------------------------------------------------

  private async call<T>(endpoint: DeelEndpoint, options: CallOptions, attemptOnce: (options: CallOptions) => Promise<T>): Promise<T> {
    const arrived = this.clock.now();
    const deadline = Math.min(options.deadline ?? Infinity, (options.startedAt ?? arrived) + this.timeoutMs);
    const callerSignal = options.signal;
    if (callerSignal?.aborted) {
      throw new DeelError("unavailable", `The call to Deel was aborted by the caller before ${endpoint}`, { mayHaveMinted: false });
    }

    // One signal for every wait of this call: it fires at the deadline or when the caller aborts.
    const waits = new AbortController();
    const callEnded = new AbortController();
    void sleepUntil(this.clock, deadline, callEnded.signal).then(
      () => waits.abort(),
      () => undefined,
    );
    const onCallerAbort = () => waits.abort();
    callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
    const attemptOptions: CallOptions = { deadline };
    if (options.requestId !== undefined) attemptOptions.requestId = options.requestId;
    if (callerSignal !== undefined) attemptOptions.signal = callerSignal;

    let last: DeelError | undefined;
    let lastWaitMs = 0;
    let garbledRetried = false;
    /** Whether any attempt so far may have made Deel act (see `DeelError.mayHaveMinted`). */
    let mayHaveMinted = false;
    /** Ends the call: the last upstream error if there was one, else why no attempt could be made. */
    const refuse = (attempt: number, reason: "breaker_open" | "budget" | "deadline", error: DeelError): DeelError => {
      this.emit({ type: "rejected", endpoint, attempt, reason });
      return last === undefined ? error : withRetryAfter(last, lastWaitMs);
    };

    /**
     * No attempt starts without its reserve left (e.g. after queueing behind the same profile): one
     * that could only time out might still reach Deel, unseen by us. Checked on the clock before
     * every attempt and again after every wait, whatever the wait had planned: a timer that fires
     * late on a busy host must not send an attempt the deadline no longer has room for.
     */
    const refuseIfTooLate = (attempt: number): void => {
      if (deadline - this.clock.now() >= this.reserveMs) return;
      const tooLate = new DeelError("unavailable", `Too little of the ${this.timeoutMs}ms deadline was left to call ${endpoint}`, { mayHaveMinted: false });
      throw refuse(attempt, "deadline", tooLate);
    };

    try {
      for (let attempt = 1; ; attempt += 1) {
        refuseIfTooLate(attempt);
        // 1. An open circuit refuses before the call spends a budget slot.
        try {
          this.breaker.check();
        } catch (error) {
          throw refuse(attempt, "breaker_open", error as DeelError);
        }
        // 2. The organization's budget: wait for a slot that leaves the attempt time to run.
        const waitStart = this.clock.now();
        if (this.budget !== null) {
          // A circuit that opens meanwhile releases the wait: the call would only fail fast after it.
          let circuitOpened = false;
          const release = () => {
            circuitOpened = true;
            waits.abort();
          };
          this.waitingForSlot.add(release);
          try {
            await this.budget.acquire(deadline - this.reserveMs, waits.signal);
          } catch (error) {
            if (!isDeelError(error)) throw error;
            if (circuitOpened) throw refuse(attempt, "breaker_open", this.breakerError());
            if (callerSignal?.aborted) throw error;
            throw refuse(attempt, "budget", error);
          } finally {
            this.waitingForSlot.delete(release);
          }
          // The slot was planned to leave the reserve; a late wake-up may have eaten into it (the
          // slot is then spent unused, which only ever slows the organization down).
          refuseIfTooLate(attempt);
        }
        // 3. The circuit may have opened while the call waited; in half_open this takes the one probe.
        let permit: BreakerPermit;
        try {
          permit = this.breaker.admit();
        } catch (error) {
          throw refuse(attempt, "breaker_open", error as DeelError);
        }

        const started = this.clock.now();
        this.emit({ type: "attempt_start", endpoint, attempt, budgetWaitMs: started - waitStart });
        try {
          const result = await attemptOnce(attemptOptions);
          permit.done("success");
          this.emit({ type: "attempt_end", endpoint, attempt, outcome: "ok", status: endpoint === REVOKE ? 204 : 201, durationMs: this.clock.now() - started });
          return result;
        } catch (error) {
          const durationMs = this.clock.now() - started;
          if (!isDeelError(error)) {
            permit.done("neutral");
            this.emit({ type: "attempt_end", endpoint, attempt, outcome: "error", durationMs });
            throw error;
          }
          const aborted = callerSignal?.aborted === true;
          permit.done(aborted ? "neutral" : this.healthOf(error));
          last = error;
          mayHaveMinted ||= error.mayHaveMinted;

          const retryInMs = aborted || attempt >= (options.maxAttempts ?? Infinity) ? undefined : this.retry.delayAfter(error, attempt, garbledRetried, deadline);
          const end: DeelEvent = { type: "attempt_end", endpoint, attempt, outcome: error.kind, durationMs };
          if (error.status !== undefined) end.status = error.status;
          if (retryInMs !== undefined) end.retryInMs = retryInMs;
          this.emit(end);
          if (retryInMs === undefined) {
            throw withRetryAfter(error, this.retry.backoff(attempt));
          }
          if (error.kind === "bad_response") garbledRetried = true;
          lastWaitMs = retryInMs;
          try {
            await this.clock.sleep(retryInMs, waits.signal);
          } catch {
            throw withRetryAfter(error, retryInMs);
          }
        }
      }
    } catch (error) {
      // Whatever ends the call (its last answer, a refusal, a wait cut short) says whether *any*
      // attempt may have made Deel act: a 502 then a 429 may have minted; a refusal alone did not.
      throw isDeelError(error) ? withMayHaveMinted(error, mayHaveMinted) : error;
    } finally {
      callEnded.abort();
      callerSignal?.removeEventListener("abort", onCallerAbort);
    }
  }

  /** The breaker's fail-fast error. */
  private breakerError(): DeelError {
    try {
      this.breaker.check();
    } catch (error) {
      return error as DeelError;
    }
    return new DeelError("unavailable", "Circuit open: Deel failed repeatedly; calls fail fast");
  }

  /** What an attempt's failure says about Deel's health. */
  private healthOf(error: DeelError): BreakerOutcome {
    switch (error.kind) {
      case "unavailable":
        return "failure";
      case "bad_response":
        // An answer outside the contract is Deel failing, unless it is a 4xx (it judged the request).
        return deelJudgedRequest(error.status) ? "success" : "failure";
      case "invalid_input":
        return "neutral";
      default:
        // 400, 401/403, 404, 429: Deel is up and answering.
        return "success";
    }
  }

  private emit(event: DeelEvent): void {
    for (const observer of this.observers) {
      try {
        observer(event);
      } catch {
        // An observer must never break a call.
      }
    }
  }
}
