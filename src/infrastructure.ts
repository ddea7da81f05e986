import type { Config } from "./config.js";
import type { OutboundBudget } from "./deel/budget.js";
import { createStore } from "./sessions/create-store.js";
import { ProfileQueue } from "./sessions/profile-queue.js";
import type { ProfileSerializer } from "./sessions/serializer.js";
import type { SessionStore } from "./sessions/store.js";

/**
 * The stateful parts one gateway process shares with its siblings (or keeps to itself): the
 * ledger, the organization's outbound Deel budget, and per-profile ordering.
 */
export interface Infrastructure {
  store: SessionStore;
  /** Null when pacing is off (`DEEL_RATE_LIMIT_RPS=0`). */
  budget: OutboundBudget | null;
  serializer: ProfileSerializer;
  close(): Promise<void>;
}

/** Builds the parts that `config` names; a test may hand in its own store. */
export async function createInfrastructure(config: Config, given: { store?: SessionStore } = {}): Promise<Infrastructure> {
  const store = given.store ?? (await createStore(config.store));
  const budget: OutboundBudget | null = null;
  const serializer = new ProfileQueue();
  return {
    store,
    budget,
    serializer,
    async close() {
      await serializer.close();
      await store.close();
    },
  };
}
