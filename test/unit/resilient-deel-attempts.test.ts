/**
 * `CallOptions.maxAttempts`: a caller that retries on its own schedule (a revocation job) asks the
 * resilience layer for fewer attempts than its own. A fake client and waits that take no time.
 */
import { aProfileId } from "../support/profiles.js";
import { describe, expect, it } from "vitest";
import type { Clock } from "../../src/base/clock.js";
import { DeelError } from "../../src/deel/errors.js";
import { ResilientDeel } from "../../src/deel/resilient.js";
import type { DeelApi } from "../../src/deel/types.js";

const START = Date.parse("2030-01-01T00:00:00Z");

/** Time stands still; a backoff is over at once; the call's deadline never fires by itself. */
const standingClock: Clock = {
  now: () => START,
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      if (ms < 1000) return resolve();
      signal?.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
    }),
};

/** A Deel that answers every revoke 503, counting the attempts. */
function anUnavailableDeel(): { client: DeelApi; attempts: () => number } {
  let attempts = 0;
  const client: DeelApi = {
    createSession: () => Promise.reject(new Error("no creates here")),
    revokeSession: async () => {
      attempts += 1;
      throw new DeelError("unavailable", "503", { status: 503 });
    },
  };
  return { client, attempts: () => attempts };
}

const P1 = aProfileId("6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50");

describe("a call's own maxAttempts", () => {
  const layer = (client: DeelApi) =>
    new ResilientDeel(client, { timeoutMs: 5_000, budget: null, maxAttempts: 3, retryBaseMs: 1, retryMaxMs: 1, breakerThreshold: 0, clock: standingClock, random: () => 0 });

  it("makes one attempt when the caller asks for one, and ends with that attempt's error", async () => {
    const deel = anUnavailableDeel();
    await expect(layer(deel.client).revokeSession(P1, { maxAttempts: 1 })).rejects.toMatchObject({ kind: "unavailable", status: 503 });
    expect(deel.attempts()).toBe(1);
  });

  it("makes the layer's own attempts without it, and never more than them with a larger one", async () => {
    const deel = anUnavailableDeel();
    await expect(layer(deel.client).revokeSession(P1)).rejects.toMatchObject({ kind: "unavailable" });
    await expect(layer(deel.client).revokeSession(P1, { maxAttempts: 10 })).rejects.toMatchObject({ kind: "unavailable" });
    expect(deel.attempts()).toBe(6);
  });
});
