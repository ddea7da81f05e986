import type { StoreConfig } from "../config.js";
import { assertNever } from "../errors.js";
import { MemorySessionStore } from "./memory-store.js";
import { SqliteSessionStore } from "./sqlite-store.js";
import type { SessionStore } from "./store.js";

/** Opens the ledger that `SESSION_STORE_URL` names. */
export async function createStore(config: StoreConfig): Promise<SessionStore> {
  switch (config.kind) {
    case "memory":
      return new MemorySessionStore();
    case "sqlite":
      return new SqliteSessionStore(config.path);
    case "redis":
      throw new Error("SESSION_STORE_URL=redis://… is not supported by this build yet");
    default:
      return assertNever(config);
  }
}
