// The Deel sandbox for the benchmark, as its own process. It is the built sandbox
// (dist/deel/sandbox/server.js, the same code as `node dist/deel/sandbox/main.js`) started with a
// larger list of worker profiles: the gateway orders creates per profile (ProfileQueue), so with only
// the five seeded profiles, 8 or 32 connections would queue behind each other inside the gateway and
// the write-path numbers would measure that queue, not the gateway's overhead.
//
// Environment: BENCH_SANDBOX_PROFILES_FILE (JSON array of UUIDs), DEEL_SANDBOX_ORG_TOKEN,
// DEEL_SANDBOX_LATENCY_MS (default 0). The rate limit is off. Prints one JSON line {url, origin}.
import { readFileSync } from "node:fs";
import { startDeelSandbox } from "../dist/deel/sandbox/server.js";

const profiles = JSON.parse(readFileSync(process.env.BENCH_SANDBOX_PROFILES_FILE, "utf8"));
const sandbox = await startDeelSandbox({
  host: "127.0.0.1",
  port: 0,
  profiles,
  orgToken: process.env.DEEL_SANDBOX_ORG_TOKEN,
  latencyMs: Number(process.env.DEEL_SANDBOX_LATENCY_MS ?? 0),
  rateLimitRps: 0,
});
process.stdout.write(`${JSON.stringify({ url: sandbox.url, origin: sandbox.origin })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  sandbox.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
