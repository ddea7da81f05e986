/**
 * The sandbox's idempotency store, as Deel behaves: a successful mint is replayed for a repeated
 * `Idempotency-Key` for 24 hours, a repeat that arrives while the first is still being processed is
 * refused, and a failed attempt is not stored (a retry with the same key is processed fresh).
 */
import type { Clock } from "../../base/clock.js";

const DAY_MS = 24 * 60 * 60 * 1000;
/** How many keys are remembered (oldest forgotten first), besides the 24 h expiry. */
const MAX_IDEMPOTENCY_KEYS = 100_000;

/** A stored successful answer, replayed as is. */
export interface StoredAnswer {
  status: number;
  body: string;
  /** The original answer's request id (sent back as `x-original-request-id`). */
  apiReqId: string;
}

/** Proof that a request holds a key while it is processed; hand it back to `complete` / `release`. */
export interface Claim {
  readonly state: "in_flight";
}

type Entry = Claim | ({ state: "done"; at: number } & StoredAnswer);

/** What to do with a request that carries a key. */
export type IdempotencyDecision =
  | { kind: "replay"; answer: StoredAnswer }
  | { kind: "in_flight" }
  | { kind: "claimed"; claim: Claim };

/** The keys of one sandbox state, in insertion order (so the oldest is forgotten first). */
export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  /** `clock` dates stored answers and tells when they expire. */
  constructor(private readonly clock: Clock) {}

  /**
   * Decides, at arrival, what a request with `key` gets: the stored answer (replay), a refusal (the
   * first is still in flight), or the key (claimed) when it is unknown or its answer expired.
   */
  begin(key: string): IdempotencyDecision {
    const entry = this.entries.get(key);
    if (entry?.state === "done" && entry.at + DAY_MS > this.clock.now()) {
      return { kind: "replay", answer: { status: entry.status, body: entry.body, apiReqId: entry.apiReqId } };
    }
    if (entry?.state === "in_flight") return { kind: "in_flight" };
    const claim: Claim = { state: "in_flight" };
    this.entries.set(key, claim);
    // Bounded like Deel's own window: forget the oldest keys past this many (local runs last long).
    if (this.entries.size > MAX_IDEMPOTENCY_KEYS) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return { kind: "claimed", claim };
  }

  /** Stores the successful answer of a claimed key, to be replayed for 24 hours. */
  complete(key: string, answer: StoredAnswer): void {
    this.entries.set(key, { state: "done", ...answer, at: this.clock.now() });
  }

  /** Forgets the key if `claim` still holds it, i.e. the attempt did not complete. */
  release(key: string, claim: Claim): void {
    if (this.entries.get(key) === claim) this.entries.delete(key);
  }
}
