// Tracing overhead on the read path (README: Tracing). Three built gateways (NODE_ENV=production,
// SQLite ledger, pacing off) answer the same `workerSession` read under autocannon (bench/load.mjs):
//
//   off    no OTEL_* variable (the default)
//   otlp   OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP/HTTP sink in this process, every
//          request sampled (the default parentbased_always_on): the SDK's batch exporter really sends
//   ftv1   APOLLO_FEDERATED_TRACING=true and every request asks for it, as a router does
//          (`apollo-federation-include-trace: ftv1`)
//
// Runs alternate (off, otlp, ftv1, off, …) after a warm-up of each. `node bench/tracing.mjs` after
// `npm run build` writes its own section of bench/results.md; `npm run bench` (scenario "tracing")
// adds the same rows to its table.
//
// Environment: BENCH_DURATION (s per run, default 6), BENCH_ROUNDS (default 2), BENCH_WARMUP (s per
// gateway, default 3), BENCH_QUICK=1 (1 s, 1 round),
// BENCH_RESULTS (the file whose tracing section is replaced; default bench/results.md).
import { execFileSync, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, "..");
const READ_QUERY =
  "query Read($profileId: ID!) { workerSession(profileId: $profileId) { profileId status createdAt expiresAt revokedAt createdBy revokedBy } }";
const CREATE_MUTATION = "mutation Create($input: CreateWorkerSessionInput!) { createWorkerSession(input: $input) { token } }";
const CONNECTIONS = 32;
const MARK_START = "<!-- tracing-overhead:start -->";
const MARK_END = "<!-- tracing-overhead:end -->";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(digits));
const fmtInt = (x) => (x === null || x === undefined || Number.isNaN(x) ? "n/a" : Math.round(x).toLocaleString("en-US"));
const mean = (xs) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch {
  /* keep 100 */
}

/** utime + stime of a process, in CPU milliseconds. */
function procCpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = fields.slice(fields.lastIndexOf(")") + 2).split(" ");
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** A child `node` process; resolves once it prints a JSON line with `url` (or at once when `waitUrl` is false). */
function startNode(args, childEnv, waitUrl = true) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? "", ...childEnv }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c) => (out = (out + c).slice(-16_384)));
  child.stderr.on("data", (c) => (out = (out + c).slice(-16_384)));
  const handle = { child, pid: child.pid, output: () => out, url: undefined };
  if (!waitUrl) return Promise.resolve(handle);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")} did not start; output:\n${out}`)), 30_000);
    const check = () => {
      const match = /"url":"([^"]+)"/.exec(out);
      if (match) {
        clearTimeout(timer);
        child.stdout.off("data", check);
        handle.url = match[1];
        resolve(handle);
      }
    };
    child.stdout.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited with ${code}; output:\n${out}`));
    });
  });
}

async function stopNode(handle) {
  if (!handle || handle.child.exitCode !== null || handle.child.signalCode !== null) return;
  const exited = new Promise((resolve) => handle.child.once("exit", resolve));
  handle.child.kill("SIGTERM");
  const force = setTimeout(() => handle.child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(force);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once the gateway answers /healthz (bounded). */
async function healthy(handle, port) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (handle.child.exitCode !== null) throw new Error(`the gateway exited with ${handle.child.exitCode}; output:\n${handle.output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`the gateway did not answer /healthz in 30 s; output:\n${handle.output()}`);
    await sleep(100);
  }
}

/** An OTLP/HTTP sink: answers every export with 200 and counts what arrived (spans, bytes). */
async function startSink() {
  const stats = { requests: 0, bytes: 0, spans: 0 };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      stats.requests += 1;
      stats.bytes += raw.length;
      try {
        const body = JSON.parse(raw.toString("utf8"));
        for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) stats.spans += (ss.spans ?? []).length;
      } catch {
        /* not JSON: counted in bytes only */
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, stats, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** One autocannon run in bench/load.mjs; returns its JSON result with the gateway's CPU per request. */
async function load(tmpDir, spec, pid) {
  const file = path.join(tmpDir, `tracing-spec-${randomUUID()}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const before = procCpuMs(pid);
  const child = spawn(process.execPath, [path.join(BENCH_DIR, "load.mjs"), file], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c) => (out += c));
  const timer = setTimeout(() => child.kill("SIGKILL"), ((spec.duration ?? 0) + 60) * 1000);
  await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  const result = JSON.parse(out.trim().split("\n").at(-1) ?? "{}");
  if (!result.ok) throw new Error(`load generator failed: ${result.error ?? out.slice(-500)}`);
  result.cpuUsPerReq = result.responses > 0 ? ((procCpuMs(pid) - before) * 1000) / result.responses : NaN;
  return result;
}

/**
 * Runs the three modes and returns rows for bench/run.mjs's table:
 * [scenario, measure, gateway, baseline, result, target, status, errors].
 */
export async function runTracingBench({ duration = 6, rounds = 2, warmup = 3, log = (line) => process.stderr.write(`[bench:tracing] ${line}\n`) } = {}) {
  if (!existsSync(path.join(ROOT, "dist/main.js"))) throw new Error("dist/main.js is missing: run `npm run build` first");
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), "wsg-bench-tracing-"));
  const secret = `bench-${randomBytes(24).toString("hex")}`;
  const orgToken = `bench-org-token-${randomBytes(16).toString("hex")}`;
  const issuer = "https://issuer.bench.invalid";
  const audience = "worker-session-gateway";
  const profile = randomUUID();
  const profilesFile = path.join(tmpDir, "profiles.json");
  writeFileSync(profilesFile, JSON.stringify([profile]));
  const now = Math.floor(Date.now() / 1000);
  const admin = await new SignJWT({ scope: "worker_sessions:read worker_sessions:create worker_sessions:revoke worker_sessions:all_profiles" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("bench-admin")
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(new TextEncoder().encode(secret));

  const started = [];
  const sink = await startSink();
  try {
    const sandbox = await startNode([path.join(BENCH_DIR, "sandbox.mjs")], { BENCH_SANDBOX_PROFILES_FILE: profilesFile, DEEL_SANDBOX_ORG_TOKEN: orgToken });
    started.push(sandbox);
    const base = {
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      DEEL_API_URL: sandbox.url,
      DEEL_API_TOKEN: orgToken,
      DEEL_RATE_LIMIT_RPS: "0",
      AUTH_JWT_SECRET: secret,
      AUTH_ISSUER: issuer,
      AUTH_AUDIENCE: audience,
      LOG_LEVEL: "warn",
      SHUTDOWN_GRACE_MS: "2000",
    };
    const modes = [
      { name: "off", label: "tracing off (default)", env: {}, headers: {} },
      { name: "otlp", label: "OpenTelemetry on, every request sampled, exported to a local OTLP sink", env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: "wsg-bench" }, headers: {} },
      { name: "ftv1", label: "Apollo ftv1 on, every request asking for it", env: { APOLLO_FEDERATED_TRACING: "true" }, headers: { "apollo-federation-include-trace": "ftv1" } },
    ];
    for (const mode of modes) {
      // LOG_LEVEL=warn prints no "listening" line: a known port, polled on /healthz.
      const port = await freePort();
      mode.gateway = await startNode([path.join(ROOT, "dist/main.js")], { ...base, ...mode.env, PORT: String(port), SESSION_STORE_URL: `sqlite:${path.join(tmpDir, `${mode.name}.db`)}` }, false);
      started.push(mode.gateway);
      mode.gateway.url = `http://127.0.0.1:${port}/graphql`;
      await healthy(mode.gateway, port);
      const headers = { "content-type": "application/json", authorization: `Bearer ${admin}`, ...mode.headers };
      const created = await fetch(mode.gateway.url, { method: "POST", headers, body: JSON.stringify({ query: CREATE_MUTATION, variables: { input: { profileId: profile } } }) });
      const createdBody = await created.json();
      if (createdBody.errors) throw new Error(`seeding ${mode.name} failed: ${JSON.stringify(createdBody.errors)}`);
      const read = await fetch(mode.gateway.url, { method: "POST", headers, body: JSON.stringify({ query: READ_QUERY, variables: { profileId: profile } }) });
      const readBody = await read.json();
      if (readBody.data?.workerSession?.status !== "ACTIVE") throw new Error(`${mode.name}: the read did not answer ACTIVE: ${JSON.stringify(readBody)}`);
      if (mode.name === "ftv1" && typeof readBody.extensions?.ftv1 !== "string") throw new Error("ftv1: the answer carries no extensions.ftv1");
      mode.spec = { url: mode.gateway.url, headers, body: JSON.stringify({ query: READ_QUERY, variables: { profileId: profile } }), connections: CONNECTIONS, graphql: true };
      mode.runs = [];
    }
    for (const mode of modes) await load(tmpDir, { ...mode.spec, duration: warmup }, mode.gateway.pid);
    const sinkBefore = { ...sink.stats };
    for (let round = 1; round <= rounds; round += 1) {
      for (const mode of modes) {
        const result = await load(tmpDir, { ...mode.spec, duration }, mode.gateway.pid);
        mode.runs.push(result);
        log(`${mode.name} round ${round}: ${fmtInt(result.rps)} req/s, p50 ${fmt(result.latency.p50, 2)} ms, p99 ${fmt(result.latency.p99, 2)} ms, ${fmt(result.cpuUsPerReq, 0)} µs CPU/req`);
      }
    }
    // Let the last batches of the exporting gateway arrive.
    await sleep(6000);
    const otlpResponses = modes[1].runs.reduce((sum, r) => sum + r.responses, 0);
    const exported = { spans: sink.stats.spans - sinkBefore.spans, bytes: sink.stats.bytes - sinkBefore.bytes };

    const summary = modes.map((mode) => ({
      mode,
      rps: mean(mode.runs.map((r) => r.rps)),
      p50: mean(mode.runs.map((r) => r.latency.p50)),
      p99: mean(mode.runs.map((r) => r.latency.p99)),
      cpu: mean(mode.runs.map((r) => r.cpuUsPerReq)),
      errors: mode.runs.reduce((sum, r) => sum + (r.non2xx ?? 0) + (r.errors ?? 0) + (r.timeouts ?? 0) + (r.graphqlErrors ?? 0), 0),
    }));
    const off = summary[0];
    const rows = summary.map((s) => [
      `8. Tracing overhead (workerSession, ${CONNECTIONS} conn)`,
      s.mode.label,
      `${fmtInt(s.rps)} req/s (p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} ms); ${fmt(s.cpu, 0)} µs CPU/req`,
      s.mode.name === "off" ? "" : "tracing off",
      s.mode.name === "off" ? "reference" : `${fmt(s.rps / off.rps, 3)}× req/s, ${s.cpu >= off.cpu ? "+" : ""}${fmt(s.cpu - off.cpu, 0)} µs CPU/req (rounds: ${s.mode.runs.map((r, i) => fmt(r.rps / off.mode.runs[i].rps, 3)).join(", ")})`,
      "— (reported)",
      "—",
      String(s.errors),
    ]);
    const spansPerRequest = otlpResponses > 0 ? exported.spans / otlpResponses : NaN;
    const notes = [
      `Tracing on: the sink received ${fmtInt(exported.spans)} spans (${fmt(spansPerRequest, 2)} per read request: the request span and its ledger read) in ${fmt(exported.bytes / 1e6, 1)} MB of OTLP/HTTP JSON during the measured runs.`,
    ];
    return { rows, notes };
  } finally {
    for (const handle of started.reverse()) await stopNode(handle);
    await sink.close();
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** Replaces (or appends) the tracing section of `file`. */
function writeSection(file, rows, notes, settings) {
  const table = [
    "| Scenario | Measure | Gateway | Compared with | Result | Target | Status | Errors |",
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
  const section = `${MARK_START}
## Tracing overhead (\`node bench/tracing.mjs\`)

- **Date:** ${new Date().toISOString()}; **Node:** ${process.version}; **Machine:** ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}; load average before ${settings.loadBefore}, after ${os.loadavg().map((x) => x.toFixed(2)).join(" / ")}
- **Settings:** ${settings.duration} s per run, ${settings.rounds} alternating round(s) after a ${settings.warmup} s warm-up of each gateway; NODE_ENV=production, SQLite ledger, DEEL_RATE_LIMIT_RPS=0, LOG_LEVEL=warn.

${table}

${notes.map((n) => `- ${n}`).join("\n")}
- The three gateways run side by side on the same machine and are loaded in turn. Gateway CPU per request is the steadier measure; req/s ratios swing with whatever else the machine runs (see the rounds and the load average above).
${MARK_END}
`;
  const current = existsSync(file) ? readFileSync(file, "utf8") : "";
  const start = current.indexOf(MARK_START);
  const end = current.indexOf(MARK_END);
  const next = start !== -1 && end !== -1 ? `${current.slice(0, start)}${section}${current.slice(end + MARK_END.length + 1)}` : `${current.trimEnd()}\n\n${section}`;
  writeFileSync(file, next);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const quick = process.env.BENCH_QUICK === "1";
  const settings = {
    duration: Number(process.env.BENCH_DURATION ?? (quick ? 1 : 6)),
    rounds: Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 2)),
    warmup: Number(process.env.BENCH_WARMUP ?? (quick ? 1 : 3)),
    loadBefore: os.loadavg().map((x) => x.toFixed(2)).join(" / "),
  };
  const file = process.env.BENCH_RESULTS ?? (quick ? path.join(BENCH_DIR, ".tmp", "results-tracing-quick.md") : path.join(BENCH_DIR, "results.md"));
  runTracingBench(settings).then(
    ({ rows, notes }) => {
      for (const r of rows) process.stdout.write(`${r[1]}: ${r[2]} — ${r[4]}\n`);
      for (const n of notes) process.stdout.write(`${n}\n`);
      writeSection(file, rows, notes, settings);
      process.stdout.write(`results: ${path.relative(ROOT, file)}\n`);
    },
    (error) => {
      process.stderr.write(`bench:tracing failed: ${error.stack ?? error.message}\n`);
      process.exit(1);
    },
  );
}
