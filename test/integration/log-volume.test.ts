import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Scope } from "../../src/auth/caller.js";
import type { BackgroundClock } from "../../src/base/clock.js";
import { aCallerToken } from "../support/callers.js";
import { aManualClock, type ManualClock } from "../support/clock.js";
import { gql, startTestGateway, type TestGateway } from "../support/gateway.js";

/**
 * An entity fetch of about 97 kB whose one representation names a type nobody has: Apollo's
 * entity resolver throws a plain Error that quotes the name, so the masked error's message and its
 * stack each repeat the caller's 97 kB.
 */
const FLOOD = {
  query: "query ($representations: [_Any!]!) { _entities(representations: $representations) { __typename } }",
  variables: { representations: [{ __typename: "T".repeat(97_000) }] },
};

/** Sends `rounds` rounds of `concurrency` flood requests at once; every answer is a masked error. */
async function flood(gw: TestGateway, token: string, rounds: number, concurrency: number): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    const answers = await Promise.all(Array.from({ length: concurrency }, () => gql(gw.url, FLOOD.query, FLOOD.variables, { token })));
    for (const answer of answers) expect(answer.errors?.map((error) => error.extensions?.code)).toEqual(["INTERNAL_SERVER_ERROR"]);
  }
}

function bytes(lines: readonly string[]): number {
  return lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0);
}

/** Waits, a bounded number of turns of the event loop, until `found` holds. */
async function eventually(found: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100 && !found(); turn += 1) await new Promise((resolve) => setImmediate(resolve));
}

let reader: string;
beforeAll(async () => {
  reader = await aCallerToken({ sub: "reader-1", scopes: [Scope.read] });
});

describe("one request's error line", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ env: { NODE_ENV: "production" } });
  });
  afterAll(() => gw.close());

  it("holds a few kB at most, with the caller's text cut and the request id kept", async () => {
    const from = gw.logs.lines.length;
    await gql(gw.url, FLOOD.query, FLOOD.variables, { token: reader, headers: { "x-request-id": "flood-1" } });
    const lines = gw.logs.lines.slice(from).filter((line) => line.includes('"level":"error"'));
    expect(lines).toHaveLength(1);
    const line = lines[0] as string;
    expect(Buffer.byteLength(line)).toBeLessThan(6_000);
    const entry = JSON.parse(line) as { requestId: string; count: number; err: { message: string; stack: string } };
    expect(entry).toMatchObject({ requestId: "flood-1", count: 1 });
    expect(entry.err.message).toMatch(/^The _entities resolver tried to load an entity for type "T+…\[\d+ more characters\]$/);
    expect(entry.err.stack).toMatch(/more characters\]\n {4}at /);
  });
});

describe("a flood of failing requests", () => {
  let gw: TestGateway;
  let clock: ManualClock;
  beforeAll(async () => {
    clock = aManualClock();
    const logClock: BackgroundClock = { ...clock, sleepInBackground: (ms, signal) => clock.sleep(ms, signal) };
    gw = await startTestGateway({
      env: { NODE_ENV: "production", LOG_ERROR_LINES_PER_SECOND: "20", LOG_DROPPED_SUMMARY_MS: "10000" },
      logClock,
    });
  });
  afterAll(() => gw.close());

  // The flood: 8 requests at once, each of 97 kB, from a caller with read scope. Time
  // stands still for the logger, so every line falls in one second of its budget.
  it("writes under 1 MB, at most LOG_ERROR_LINES_PER_SECOND error lines a second, and says how many it dropped", { timeout: 60_000 }, async () => {
    const from = gw.logs.lines.length;
    await flood(gw, reader, 15, 8);
    const written = gw.logs.lines.slice(from);
    console.log(`log bytes for 120 flood requests: ${bytes(written)}`);
    expect(bytes(written)).toBeLessThan(1_000_000);
    expect(written.filter((line) => line.includes('"level":"error"'))).toHaveLength(20);

    clock.advance(10_000);
    const summary = () => gw.logs.lines.slice(from).find((line) => line.includes('"droppedLines"'));
    await eventually(() => summary() !== undefined);
    expect(JSON.parse(summary() ?? "{}")).toMatchObject({ level: "warn", droppedLines: 100, sinceMs: 10_000 });

    // The next second admits lines again.
    const next = gw.logs.lines.length;
    await flood(gw, reader, 1, 8);
    expect(gw.logs.lines.slice(next).filter((line) => line.includes('"level":"error"'))).toHaveLength(8);
  });
});
