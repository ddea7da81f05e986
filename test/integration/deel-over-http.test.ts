/**
 * The resilience layer and the in-process budget around a real DeelClient, against a real sandbox
 * over HTTP: what only the wire can show. The same Idempotency-Key reaches Deel on every retry and
 * Deel mints one token; a hanging request is aborted at the layer's deadline, not abandoned; a
 * garbled or HTML answer never ends up in the error; and Deel's own 5 rps limit is never hit.
 * Timings and the rules themselves are unit-tested on a fake clock (test/unit/resilient-deel.test.ts,
 * test/unit/local-budget.test.ts).
 */
import { Pool } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DeelClient } from "../../src/deel/client.js";
import { LocalBudget } from "../../src/deel/local-budget.js";
import { ResilientDeel, type ResilientDeelOptions } from "../../src/deel/resilient.js";
import { startDeelSandbox, type DeelSandbox } from "../../src/deel/sandbox/server.js";
import { deelFailure } from "../support/deel-errors.js";
import { aProfileId } from "../support/profiles.js";
import type { ProfileId } from "../../src/base/profile-id.js";

let sandbox: DeelSandbox;
let client: DeelClient;
let P1: ProfileId;
let P2: ProfileId;

beforeAll(async () => {
  sandbox = await startDeelSandbox({ rateLimitRps: 0 });
  client = new DeelClient({ baseUrl: sandbox.url, token: sandbox.orgToken, timeoutMs: 10_000 });
  [P1, P2] = sandbox.profiles.map(aProfileId) as [ProfileId, ProfileId];
});
afterAll(async () => {
  await client.close();
  await sandbox.close();
});
afterEach(() => {
  sandbox.reset();
  sandbox.setRateLimit(0);
});

/** A layer with short, jitter-free backoff. */
function resilient(options: Partial<ResilientDeelOptions> = {}): ResilientDeel {
  return new ResilientDeel(client, { timeoutMs: 5_000, budget: null, retryBaseMs: 20, random: () => 0.5, ...options });
}

function posts(): Array<{ key: string | undefined; status: number }> {
  return sandbox.requests.filter((r) => r.method === "POST").map((r) => ({ key: r.idempotencyKey, status: r.status }));
}

describe("ResilientDeel over HTTP", () => {
  it("retries a POST that met one 500 with the same Idempotency-Key, and Deel mints one token", async () => {
    sandbox.injectFault({ kind: "status", status: 500 }, { times: 1, method: "POST" });
    const minted = await resilient().createSession(P1, "key-500");
    expect(posts()).toEqual([
      { key: "key-500", status: 500 },
      { key: "key-500", status: 201 },
    ]);
    expect(minted.token).toBe(sandbox.state(P1)?.token);
  });

  it("retries a broken connection (socket reset) with the same key", async () => {
    sandbox.injectFault({ kind: "reset" }, { times: 2 });
    const minted = await resilient().createSession(P2, "key-reset");
    expect(posts()).toEqual([
      { key: "key-reset", status: 0 },
      { key: "key-reset", status: 0 },
      { key: "key-reset", status: 201 },
    ]);
    expect(minted.token).toBe(sandbox.state(P2)?.token);
  });

  it("aborts a hanging request at the layer's deadline: nothing is left running in the pool", async () => {
    sandbox.injectFault({ kind: "hang" });
    const pool = new Pool(new URL(sandbox.url).origin, { connections: 2 });
    // The client's own timeout is far longer than the layer's deadline: only the latter can end the call.
    const own = new DeelClient({ baseUrl: sandbox.url, token: sandbox.orgToken, timeoutMs: 60_000, dispatcher: pool });
    try {
      const error = await deelFailure(new ResilientDeel(own, { timeoutMs: 500, budget: null }).createSession(P1, "key-hang"));
      expect(error.kind).toBe("unavailable");
      expect(posts()).toHaveLength(1);
      // The undici request was aborted, not merely abandoned (the pool's bookkeeping settles on a later tick).
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(pool.stats.running).toBe(0);
      expect(pool.stats.pending).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it("a non-JSON body is unavailable, and the error never carries the body", async () => {
    sandbox.injectFault({ kind: "non_json" });
    const error = await deelFailure(resilient().createSession(P1, "key-html"));
    expect(error.kind).toBe("unavailable");
    expect(`${error.message} ${String(error.cause)}`).not.toMatch(/<html|upstream trouble/i);
  });

  it("retries a garbled 201 once, with the same key, and the error never carries what it held", async () => {
    sandbox.injectFault({ kind: "raw", status: 201, body: '{"data":{"token":"abc"' });
    const error = await deelFailure(resilient({ maxAttempts: 5 }).createSession(P1, "key-trunc"));
    expect(error.kind).toBe("bad_response");
    expect(error.message).not.toContain("abc");
    expect(posts().map((p) => p.key)).toEqual(["key-trunc", "key-trunc"]);
  });
});

describe("LocalBudget in front of a sandbox that enforces 5 rps", () => {
  it("paces 15 concurrent calls so that Deel never answers 429", async () => {
    sandbox.setRateLimit(5);
    const budget = new LocalBudget({ rps: 5 });
    try {
      const deadline = Date.now() + 10_000;
      const profiles = sandbox.profiles;
      const results = await Promise.allSettled(
        Array.from({ length: 15 }, async (_, i) => {
          await budget.acquire(deadline);
          return client.createSession(aProfileId(profiles[i % profiles.length] as string), `key-${i}`);
        }),
      );
      expect(results.filter((r) => r.status === "rejected")).toEqual([]);
      expect(sandbox.count({ method: "POST" })).toBe(15);
      // The sandbox judges arrivals as Deel does (at most 5 in any rolling second, else 429): not one
      // call arrived over the limit.
      expect(sandbox.count({ status: 429 })).toBe(0);
    } finally {
      await budget.close();
    }
  });
});
