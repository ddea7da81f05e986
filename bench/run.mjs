// `npm run bench`: issue 7's harness. Starts the built gateway (NODE_ENV=production, SQLite ledger,
// DEEL_RATE_LIMIT_RPS=0), a second one on PostgreSQL (a schema of its own, dropped afterwards), the
// Deel sandbox and a bare node:http baseline as child processes, loads them with autocannon from
// another child process (bench/load.mjs), prints one table and writes bench/results.md. The read
// path and `_entities` run on both stores, side by side. See bench/README.md.
//
// Scenarios are the entries of SCENARIO_LIST (one per scenario: name, title, run, and `perStore`
// for those that run once on each store).
//
// Environment overrides:
//   BENCH_DURATION=<s>        seconds per measured run (default 6)
//   BENCH_ROUNDS=<n>          alternating gateway/baseline rounds (default 2)
//   BENCH_QUICK=1             smoke check: 1 s runs, 1 round, 5,000 memory requests; results go to
//                             bench/.tmp/results-quick.md unless BENCH_RESULTS says otherwise
//   BENCH_SCENARIOS=read,write,latency,entities,memory,hostile,deadline,tracing   run only these
//   BENCH_MEMORY_REQUESTS=<n> requests for the memory scenario (default 100000)
//   BENCH_ENTITIES_CONNECTIONS=<n>  connections for the _entities runs (default 1: latency, not queueing)
//   BENCH_STORE_URL=<url>     the first gateway's SESSION_STORE_URL (default: a SQLite file in a temp folder)
//   BENCH_POSTGRES_URL=<url>  PostgreSQL for the second gateway (default: DATABASE_URL, else
//                             postgres://postgres@127.0.0.1:5432/test); BENCH_POSTGRES=0 skips it
//   BENCH_CPU_PROF=1          start the gateway with --cpu-prof --cpu-prof-dir bench/.tmp
//   BENCH_RESULTS=<path>      where to write the results file
//   BENCH_LOG_LEVEL=<level>   the gateway's LOG_LEVEL (default warn; its output is drained, not printed)
import { execFileSync, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import pg from "pg";
import { runTracingBench } from "./tracing.mjs";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, "..");
const TMP_DIR = path.join(BENCH_DIR, ".tmp");

const env = process.env;
const QUICK = env.BENCH_QUICK === "1";
const DURATION = positive("BENCH_DURATION", QUICK ? 1 : 6);
const ROUNDS = positive("BENCH_ROUNDS", QUICK ? 1 : 2);
const WARMUP = QUICK ? 1 : 3;
const MEMORY_REQUESTS = positive("BENCH_MEMORY_REQUESTS", QUICK ? 5000 : 100_000);
const ENTITIES_CONNECTIONS = positive("BENCH_ENTITIES_CONNECTIONS", 1);
const ENTITIES_DURATION = Math.min(DURATION, 6);
const CPU_PROF = env.BENCH_CPU_PROF === "1";
const LOG_LEVEL = env.BENCH_LOG_LEVEL ?? "warn";
const POSTGRES_URL = env.BENCH_POSTGRES === "0" ? null : env.BENCH_POSTGRES_URL || env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
/** The PostgreSQL gateway's schema: the bench's own, dropped when it ends. */
const POSTGRES_SCHEMA = `wsgbench_${randomBytes(5).toString("hex")}`;
const RESULTS_FILE = env.BENCH_RESULTS ?? (QUICK ? path.join(TMP_DIR, "results-quick.md") : path.join(BENCH_DIR, "results.md"));
/** Worker profiles known to the sandbox: enough that concurrent creates never share one. */
const PROFILE_COUNT = 1000;
const READ_CONNECTIONS = 32;
const WRITE_CONNECTIONS = 32;
const LATENCY_CONNECTIONS = 8;
const DEEL_LATENCY_MS = 50;
/** The gateway's DEEL_TIMEOUT_MS: the whole-call deadline the deadline scenario waits out. */
const DEEL_TIMEOUT_MS = 10_000;
/** Creates held by a hung Deel at once in the deadline scenario (distinct profiles: no queueing). */
const DEADLINE_CALLS = QUICK ? 4 : 16;
/** Callers (distinct `sub`s) the write runs rotate through, so no one caller's mutation quota is the limit. */
const WRITE_CALLERS = 8;
const CALLER_QUOTA = env.BENCH_CALLER_QUOTA ?? "100000000"; // effectively off (src/config.ts accepts up to 1e9)

const JWT_SECRET = `bench-${randomBytes(24).toString("hex")}`;
const ISSUER = "https://issuer.bench.invalid";
const AUDIENCE = "worker-session-gateway";
const ORG_TOKEN = `bench-org-token-${randomBytes(16).toString("hex")}`;
const SCOPES = ["worker_sessions:read", "worker_sessions:create", "worker_sessions:revoke", "worker_sessions:all_profiles"];

const READ_QUERY =
  "query Read($profileId: ID!) { workerSession(profileId: $profileId) { profileId status createdAt expiresAt revokedAt createdBy revokedBy } }";
const CREATE_MUTATION =
  "mutation Create($input: CreateWorkerSessionInput!) { createWorkerSession(input: $input) { token session { profileId status createdAt expiresAt createdBy } } }";
const ENTITIES_QUERY = "query($r:[_Any!]!){ _entities(representations:$r){ ... on Worker { profileId session { status } } } }";

function positive(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`bench: ${name} must be a positive number, got ${JSON.stringify(raw)}\n`);
    process.exit(64);
  }
  return value;
}

// --- small helpers ---------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (line) => process.stderr.write(`[bench] ${line}\n`);
const mean = (xs) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(digits));
const fmtInt = (x) => (x === null || x === undefined || Number.isNaN(x) ? "n/a" : Math.round(x).toLocaleString("en-US"));
const signed = (x, digits = 1) => (Number.isNaN(x) ? "n/a" : `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`);

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch {
  /* keep 100 */
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** utime + stime of a process, in CPU milliseconds; null once it is gone. */
function procCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/** VmRSS / VmHWM of a process in MB. */
function procMemory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
  } catch {
    return { rssMb: NaN, hwmMb: NaN };
  }
}

/** Whole-machine busy and steal CPU time from /proc/stat, in CPU milliseconds. */
function systemCpuMs() {
  try {
    const [, user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).map(Number);
    return { busy: ((user + nice + system + irq + softirq) * 1000) / CLK_TCK, steal: (steal * 1000) / CLK_TCK };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

function loadavg() {
  return os.loadavg().map((x) => x.toFixed(2)).join(" / ");
}

// --- child processes -------------------------------------------------------------------------------

const children = new Set();

/**
 * Spawns a long-lived child, keeps the tail of its output, and (when `jsonUrl`) resolves once it prints
 * a JSON line with a `url`.
 */
function startChild(name, args, childEnv, { jsonUrl = true, timeoutMs = 20_000 } = {}) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: env.PATH ?? "", ...childEnv }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const handle = { name, child, pid: child.pid, tail: "", warnLines: 0, info: null, exited: null };
  const onData = (chunk) => {
    const text = chunk.toString("utf8");
    handle.tail = (handle.tail + text).slice(-16_384);
    for (const match of text.matchAll(/"level":(\d+)/g)) if (Number(match[1]) >= 40) handle.warnLines += 1;
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  child.once("exit", (code, signal) => {
    handle.exited = { code, signal };
    children.delete(child);
  });
  if (!jsonUrl) return Promise.resolve(handle);
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start in ${timeoutMs} ms; output:\n${handle.tail}`)), timeoutMs);
    const onLine = (chunk) => {
      buffer += chunk.toString("utf8");
      for (const line of buffer.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const parsed = JSON.parse(line);
          if (typeof parsed.url === "string") {
            clearTimeout(timer);
            child.stdout.off("data", onLine);
            handle.info = parsed;
            resolve(handle);
            return;
          }
        } catch {
          /* not a complete line yet */
        }
      }
    };
    child.stdout.on("data", onLine);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening; output:\n${handle.tail}`));
    });
  });
}

async function stopChild(handle, timeoutMs = 15_000) {
  if (!handle || handle.exited) return handle?.exited;
  const exited = new Promise((resolve) => handle.child.once("exit", (code, signal) => resolve({ code, signal })));
  handle.child.kill("SIGTERM");
  const result = await Promise.race([exited, sleep(timeoutMs).then(() => null)]);
  if (result === null) {
    handle.child.kill("SIGKILL");
    return exited;
  }
  return result;
}

function killAll() {
  for (const child of children) child.kill("SIGKILL");
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

// --- the load generator ----------------------------------------------------------------------------

let specCounter = 0;
let tmpDir;

/**
 * One autocannon run in a child process, with the CPU accounting around it: how much CPU the gateway
 * (or baseline) spent per request, and how busy the machine was with work that is not ours.
 */
async function load(label, spec, watched) {
  const file = path.join(tmpDir, `spec-${++specCounter}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const pids = [...targets.map((t) => t.handle), sandbox, baseline, plainApollo].filter((h) => h && !h.exited).map((h) => h.pid);
  const before = { sys: systemCpuMs(), procs: pids.map(procCpuMs), self: process.cpuUsage(), at: performance.now() };
  const child = spawn(process.execPath, [path.join(BENCH_DIR, "load.mjs"), file], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => (out += c));
  child.stderr.on("data", (c) => (err += c));
  const limitMs = ((spec.duration ?? 0) + 60) * 1000 + (spec.amount ? 300_000 : 0);
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const code = await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  children.delete(child);
  const wallMs = performance.now() - before.at;
  const line = out.trim().split("\n").at(-1) ?? "";
  let result;
  try {
    result = JSON.parse(line);
  } catch {
    throw new Error(`load generator for "${label}" failed (exit ${code}): ${(err || out).slice(-2000)}`);
  }
  if (!result.ok) throw new Error(`load generator for "${label}" failed: ${result.error}`);
  const sys = systemCpuMs();
  const procsAfter = pids.map(procCpuMs);
  const ours = procsAfter.reduce((sum, after, i) => sum + (after ?? 0) - (before.procs[i] ?? 0), 0);
  const self = process.cpuUsage(before.self);
  const busy = sys.busy - before.sys.busy;
  result.label = label;
  result.wallMs = wallMs;
  result.foreignCores = Math.max(0, (busy - ours - result.loaderCpuMs - (self.user + self.system) / 1000) / wallMs);
  result.stealCores = (sys.steal - before.sys.steal) / wallMs;
  if (watched) {
    const i = pids.indexOf(watched.pid);
    const spent = i === -1 ? null : (procsAfter[i] ?? NaN) - (before.procs[i] ?? NaN);
    result.serverCpuMs = spent;
    result.serverCpuUsPerReq = spent === null || result.responses === 0 ? null : (spent * 1000) / result.responses;
  }
  runs.push(result);
  log(
    `${label}: ${fmtInt(result.rps)} req/s, p50 ${fmt(result.latency.p50, 2)} ms, p99 ${fmt(result.latency.p99, 2)} ms` +
      `${errorCount(result) ? `, errors ${describeErrors(result)}` : ""}, other load ${fmt(result.foreignCores, 2)} cores`,
  );
  return result;
}

const runs = [];

function errorCount(r) {
  return (r.non2xx ?? 0) + (r.errors ?? 0) + (r.timeouts ?? 0) + (r.graphqlErrors ?? 0);
}

function describeErrors(r) {
  const parts = [];
  if (r.non2xx) parts.push(`non-2xx ${r.non2xx} (${Object.entries(r.statusCodes).filter(([c]) => !c.startsWith("2")).map(([c, n]) => `${c}×${n}`).join(" ")})`);
  if (r.errors) parts.push(`conn errors ${r.errors}`);
  if (r.timeouts) parts.push(`timeouts ${r.timeouts}`);
  if (r.graphqlErrors) parts.push(`GraphQL errors ${r.graphqlErrors}`);
  return parts.join(", ") || "0";
}

// --- GraphQL and sandbox calls from this process ---------------------------------------------------

async function post(url, body, headers) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

function gql(token, query, variables) {
  return post(gatewayUrl, { query, variables }, { authorization: `Bearer ${token}` });
}

async function sandboxControl(method, route, body) {
  const res = await fetch(`${sandbox.info.origin}/__sandbox/${route}`, {
    method,
    headers: { authorization: `Bearer ${ORG_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.arrayBuffer();
  if (res.status >= 300) throw new Error(`sandbox control ${method} ${route} answered ${res.status}`);
}

/**
 * Sends a few requests outside the measured run and checks their bodies. Returns the problems found
 * (an empty list when every answer was a clean 2xx without GraphQL `errors`).
 */
async function sample(label, count, send, check = () => null) {
  const problems = [];
  for (let i = 0; i < count; i++) {
    try {
      const res = await send(i);
      if (res.status < 200 || res.status >= 300) problems.push(`${label}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      else if (res.json?.errors) problems.push(`${label}: GraphQL errors ${JSON.stringify(res.json.errors).slice(0, 300)}`);
      else {
        const problem = check(res.json);
        if (problem) problems.push(`${label}: ${problem}`);
      }
    } catch (error) {
      problems.push(`${label}: ${error.message}`);
    }
  }
  return problems;
}

async function metricValue(name) {
  try {
    const res = await fetch(new URL("/metrics", gatewayUrl));
    const text = await res.text();
    if (res.status !== 200) return null;
    let found = false;
    let total = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith("#")) continue;
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`).exec(line);
      if (match) {
        found = true;
        total += Number(match[1]);
      }
    }
    return found ? total : null;
  } catch {
    return null;
  }
}

// --- state -----------------------------------------------------------------------------------------

let sandbox;
/** The gateway the current scenario loads (`targets[0]`, or the store a per-store scenario is on). */
let gateway;
/** Every gateway started: `{ store, handle, url }`, SQLite (or BENCH_STORE_URL) first, then PostgreSQL. */
const targets = [];
/** The store the current scenario runs on ("SQLite", "PostgreSQL", …). */
let currentStore = "";
/** Per-store results for the side-by-side table: measure → store → text. */
const byStore = new Map();
let baseline;
// Plain Apollo Server 5 with a trivial resolver: a reference for the read path.
let plainApollo;
/** Its measured run (once, beside the first store's read path). */
let plainApolloResult;
let gatewayUrl;
let adminToken;
/** A verified caller with no scope: the cost attack must be refused before its refusals are built. */
let noScopeToken;
let writeTokens = [];
let profiles = [];
const rows = [];
const notes = [];
const problemsByScenario = {};

function row(scenario, measure, gatewayCell, baselineCell, result, target, status, errors = "0") {
  rows.push({ scenario, measure, gateway: gatewayCell, baseline: baselineCell, result, target, status, errors });
}

function withErrorFlag(status, errors) {
  return errors === "0" ? status : `${status} (errors!)`;
}

function sumErrors(results, extraProblems = []) {
  const total = { non2xx: 0, errors: 0, timeouts: 0, graphqlErrors: 0, statusCodes: {} };
  for (const r of results) {
    total.non2xx += r.non2xx ?? 0;
    total.errors += r.errors ?? 0;
    total.timeouts += r.timeouts ?? 0;
    total.graphqlErrors += r.graphqlErrors ?? 0;
    for (const [code, n] of Object.entries(r.statusCodes ?? {})) total.statusCodes[code] = (total.statusCodes[code] ?? 0) + n;
  }
  const described = describeErrors(total);
  const parts = described === "0" ? [] : [described];
  if (extraProblems.length > 0) parts.push(`${extraProblems.length} bad sample(s)`);
  return parts.length === 0 ? "0" : parts.join("; ");
}

function sideBySide(measure, text) {
  if (!byStore.has(measure)) byStore.set(measure, new Map());
  byStore.get(measure).set(currentStore, text);
}

/** Alternates gateway and baseline runs: warm-up each, then ROUNDS × (gateway, baseline). */
async function alternate(name, gatewaySpec, baselineSpec, baselineHandle, gatewayHandle = gateway) {
  await load(`${name} gateway warm-up`, { ...gatewaySpec, duration: WARMUP }, gatewayHandle);
  await load(`${name} baseline warm-up`, { ...baselineSpec, duration: WARMUP }, baselineHandle);
  const g = [];
  const b = [];
  for (let round = 1; round <= ROUNDS; round++) {
    g.push(await load(`${name} gateway #${round}`, { ...gatewaySpec, duration: DURATION }, gatewayHandle));
    b.push(await load(`${name} baseline #${round}`, { ...baselineSpec, duration: DURATION }, baselineHandle));
  }
  const summary = (rs) => ({
    rps: mean(rs.map((r) => r.rps)),
    p50: mean(rs.map((r) => r.latency.p50 ?? NaN)),
    p99: mean(rs.map((r) => r.latency.p99 ?? NaN)),
    cpuUs: mean(rs.map((r) => r.serverCpuUsPerReq ?? NaN)),
    runs: rs,
  });
  return { gateway: summary(g), baseline: summary(b), ratios: g.map((r, i) => r.rps / b[i].rps) };
}

// --- scenarios -------------------------------------------------------------------------------------

async function scenarioRead() {
  const body = JSON.stringify({ query: READ_QUERY, variables: { profileId: profiles[0] } });
  const headers = { "content-type": "application/json", authorization: `Bearer ${adminToken}` };
  const check = (json) => (json?.data?.workerSession?.status === "ACTIVE" ? null : `expected an ACTIVE session, got ${JSON.stringify(json).slice(0, 200)}`);
  const send = (url) => () => post(url, JSON.parse(body), { authorization: `Bearer ${adminToken}` });
  const problems = [
    ...(await sample("read gateway before", 3, send(gatewayUrl), check)),
    ...(await sample("read baseline before", 3, send(baseline.info.url), check)),
  ];
  const spec = { method: "POST", headers, body, connections: READ_CONNECTIONS, graphql: true };
  const result = await alternate(`read ${currentStore}`, { ...spec, url: gatewayUrl }, { ...spec, url: baseline.info.url }, baseline);
  problems.push(...(await sample("read gateway after", 3, send(gatewayUrl), check)));
  problemsByScenario[`read ${currentStore}`] = problems;
  const ratio = result.gateway.rps / result.baseline.rps;
  const errors = sumErrors([...result.gateway.runs, ...result.baseline.runs], problems);
  // Reference: plain Apollo Server 5 with one trivial resolver, against the same bare baseline.
  // Run once, with the first store.
  let apolloRow;
  if (plainApollo !== undefined && plainApolloResult === undefined) {
    apolloRow = await alternate("read plain-apollo", { ...spec, url: plainApollo.info.url }, { ...spec, url: baseline.info.url }, baseline, plainApollo);
    plainApolloResult = apolloRow;
  }
  sideBySide(
    `Read path (workerSession, ${READ_CONNECTIONS} conn): req/s (p50 / p99 ms)`,
    `${fmtInt(result.gateway.rps)} (${fmt(result.gateway.p50, 2)} / ${fmt(result.gateway.p99, 2)})`,
  );
  sideBySide("Read path: × the bare handler (rounds)", `${fmt(ratio, 3)}× (${result.ratios.map((r) => fmt(r, 3)).join(", ")})`);
  sideBySide("Read path: gateway CPU per request", `${fmt(result.gateway.cpuUs, 0)} µs`);
  if (plainApolloResult !== undefined) sideBySide("Read path: × plain Apollo Server 5", `${fmt(result.gateway.rps / plainApolloResult.gateway.rps, 2)}×`);
  row(
    `1. Read path (workerSession, ${READ_CONNECTIONS} conn), ${currentStore}`,
    "req/s (p50 / p99 ms)",
    `${fmtInt(result.gateway.rps)} (${fmt(result.gateway.p50, 2)} / ${fmt(result.gateway.p99, 2)})`,
    `${fmtInt(result.baseline.rps)} (${fmt(result.baseline.p50, 2)} / ${fmt(result.baseline.p99, 2)}) bare node:http`,
    `${fmt(ratio, 3)}× (rounds: ${result.ratios.map((r) => fmt(r, 3)).join(", ")})`,
    "≥ 0.30×",
    withErrorFlag(ratio >= 0.3 ? "PASS" : "MISS", errors),
    errors,
  );
  if (apolloRow !== undefined) {
    const apolloRatio = apolloRow.gateway.rps / apolloRow.baseline.rps;
    row(
      "1. Read path, reference: plain Apollo Server 5 (one trivial resolver, no auth)",
      "req/s (p50 / p99 ms)",
      `${fmtInt(apolloRow.gateway.rps)} (${fmt(apolloRow.gateway.p50, 2)} / ${fmt(apolloRow.gateway.p99, 2)})`,
      `${fmtInt(apolloRow.baseline.rps)} bare node:http`,
      `${fmt(apolloRow.gateway.rps / apolloRow.baseline.rps, 3)}× (rounds: ${apolloRow.ratios.map((r) => fmt(r, 3)).join(", ")}); gateway = ${fmt(result.gateway.rps / apolloRow.gateway.rps, 2)}× plain Apollo`,
      "reference",
      Number.isFinite(apolloRatio) ? "—" : "failed",
      0,
    );
  }
  notes.push(
    `Read path (${currentStore}): the gateway spent ${fmt(result.gateway.cpuUs, 0)} µs of CPU per request, the bare handler ${fmt(result.baseline.cpuUs, 0)} µs ` +
      `(CPU ratio ${fmt(result.baseline.cpuUs / result.gateway.cpuUs, 3)}×, less sensitive to other load than req/s).`,
  );
}

function writeSpecs(connections) {
  const gatewayVariants = profiles.map((id, i) => ({
    body: JSON.stringify({ query: CREATE_MUTATION, variables: { input: { profileId: id } } }),
    headers: { authorization: `Bearer ${writeTokens[i % writeTokens.length]}` },
  }));
  const directVariants = profiles.map((id) => ({ body: JSON.stringify({ data: { profile_id: id } }) }));
  return {
    gateway: { url: gatewayUrl, method: "POST", headers: { "content-type": "application/json" }, variants: gatewayVariants, connections, graphql: true },
    direct: {
      url: `${sandbox.info.url}/workers/session`,
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ORG_TOKEN}` },
      variants: directVariants,
      connections,
    },
  };
}

async function writeSamples(label) {
  const gatewayProblems = await sample(`${label} gateway`, 3, (i) => gql(writeTokens[i % writeTokens.length], CREATE_MUTATION, { input: { profileId: profiles[i + 1] } }), (json) =>
    json?.data?.createWorkerSession?.session?.status === "ACTIVE" && typeof json.data.createWorkerSession.token === "string" ? null : `unexpected ${JSON.stringify(json).slice(0, 200)}`,
  );
  const directProblems = await sample(`${label} direct`, 3, (i) =>
    post(`${sandbox.info.url}/workers/session`, { data: { profile_id: profiles[i + 1] } }, { authorization: `Bearer ${ORG_TOKEN}` }),
  );
  return [...gatewayProblems, ...directProblems];
}

async function scenarioWrite() {
  await sandboxControl("PUT", "settings", { latencyMs: 0 });
  await sandboxControl("POST", "reset");
  const problems = await writeSamples("write before");
  const specs = writeSpecs(WRITE_CONNECTIONS);
  const result = await alternate("write", specs.gateway, specs.direct, sandbox);
  problems.push(...(await writeSamples("write after")));
  problemsByScenario.write = problems;
  await sandboxControl("POST", "reset"); // the sandbox records every request: let it forget them
  const ratio = result.gateway.rps / result.baseline.rps;
  const errors = sumErrors([...result.gateway.runs, ...result.baseline.runs], problems);
  row(
    `2. Write path (createWorkerSession, Deel 0 ms, ${WRITE_CONNECTIONS} conn)`,
    "req/s (p50 / p99 ms)",
    `${fmtInt(result.gateway.rps)} (${fmt(result.gateway.p50, 2)} / ${fmt(result.gateway.p99, 2)})`,
    `${fmtInt(result.baseline.rps)} (${fmt(result.baseline.p50, 2)} / ${fmt(result.baseline.p99, 2)}) direct POST to sandbox`,
    `${fmt(ratio, 3)}× (rounds: ${result.ratios.map((r) => fmt(r, 3)).join(", ")})`,
    "— (reported)",
    withErrorFlag("—", errors),
    errors,
  );
  notes.push(
    `Write path: gateway CPU ${fmt(result.gateway.cpuUs, 0)} µs/request; the sandbox spent ${fmt(result.baseline.cpuUs, 0)} µs/request ` +
      `answering direct POSTs (the sandbox's CPU during gateway runs is not counted in the gateway's).`,
  );
}

async function scenarioLatency() {
  await sandboxControl("PUT", "settings", { latencyMs: DEEL_LATENCY_MS });
  await sandboxControl("POST", "reset");
  let result;
  let problems;
  try {
    problems = await writeSamples("latency before");
    const specs = writeSpecs(LATENCY_CONNECTIONS);
    result = await alternate("latency", specs.gateway, specs.direct, sandbox);
    problems.push(...(await writeSamples("latency after")));
  } finally {
    await sandboxControl("PUT", "settings", { latencyMs: 0 });
    await sandboxControl("POST", "reset");
  }
  problemsByScenario.latency = problems;
  const addedP50 = result.gateway.p50 - result.baseline.p50;
  const addedP99 = result.gateway.p99 - result.baseline.p99;
  const errors = sumErrors([...result.gateway.runs, ...result.baseline.runs], problems);
  const cells = [
    `${fmtInt(result.gateway.rps)} req/s (${fmt(result.gateway.p50, 2)} / ${fmt(result.gateway.p99, 2)})`,
    `${fmtInt(result.baseline.rps)} req/s (${fmt(result.baseline.p50, 2)} / ${fmt(result.baseline.p99, 2)}) direct`,
  ];
  const name = `3. Added latency (createWorkerSession, Deel ${DEEL_LATENCY_MS} ms, ${LATENCY_CONNECTIONS} conn)`;
  row(name, "p50 added (ms)", ...cells, `${signed(addedP50, 2)} ms`, "≤ 3 ms", withErrorFlag(addedP50 <= 3 ? "PASS" : "MISS", errors), errors);
  row(name, "p99 added (ms)", "″", "″", `${signed(addedP99, 2)} ms`, "≤ 10 ms", withErrorFlag(addedP99 <= 10 ? "PASS" : "MISS", errors), errors);
}

/**
 * Mints a session for every profile through the current gateway (once per store), so that each
 * store's `_entities` runs read the same ledger: one ACTIVE record per representation.
 */
async function seedEveryProfile() {
  const target = targets.find((t) => t.store === currentStore);
  if (target.seeded) return;
  let next = 0;
  const failures = [];
  await Promise.all(
    Array.from({ length: 16 }, async (_, lane) => {
      while (next < profiles.length) {
        const profileId = profiles[next++];
        const res = await gql(writeTokens[lane % writeTokens.length], CREATE_MUTATION, { input: { profileId } });
        if (res.status !== 200 || res.json?.errors) failures.push(`HTTP ${res.status} ${res.text.slice(0, 160)}`);
      }
    }),
  );
  if (failures.length > 0) throw new Error(`seeding ${currentStore}: ${failures.length} create(s) failed, first: ${failures[0]}`);
  target.seeded = true;
}

async function scenarioEntities() {
  await seedEveryProfile();
  const results = {};
  const problems = [];
  for (const n of [1, 10, 100]) {
    const variants = [];
    for (let v = 0; v < 64; v++) {
      const representations = [];
      for (let i = 0; i < n; i++) representations.push({ __typename: "Worker", profileId: profiles[(v * n + i) % profiles.length] });
      variants.push({ body: JSON.stringify({ query: ENTITIES_QUERY, variables: { r: representations } }) });
    }
    const check = (json) => {
      const list = json?.data?._entities;
      return Array.isArray(list) && list.length === n ? null : `expected ${n} entities, got ${JSON.stringify(json).slice(0, 200)}`;
    };
    const sendOne = () => post(gatewayUrl, JSON.parse(variants[0].body), { authorization: `Bearer ${adminToken}` });
    problems.push(...(await sample(`_entities ×${n} before`, 2, sendOne, check)));
    const spec = {
      url: gatewayUrl,
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
      variants,
      connections: ENTITIES_CONNECTIONS,
      graphql: true,
    };
    await load(`_entities ×${n} ${currentStore} warm-up`, { ...spec, duration: Math.min(WARMUP, 2) }, gateway);
    const readsBefore = await metricValue("wsg_store_reads_total");
    const r = await load(`_entities ×${n} ${currentStore}`, { ...spec, duration: ENTITIES_DURATION }, gateway);
    const readsAfter = await metricValue("wsg_store_reads_total");
    problems.push(...(await sample(`_entities ×${n} after`, 2, sendOne, check)));
    r.storeReadsPerRequest = readsBefore === null || readsAfter === null || r.responses === 0 ? null : (readsAfter - readsBefore) / r.responses;
    results[n] = r;
  }
  problemsByScenario[`entities ${currentStore}`] = problems;
  const errors = sumErrors(Object.values(results), problems);
  const reads = (r) => (r.storeReadsPerRequest === null ? "n/a (metric missing)" : fmt(r.storeReadsPerRequest, 2));
  for (const n of [1, 10, 100]) {
    const r = results[n];
    sideBySide(
      `_entities × ${n}: p50 / p99 ms (req/s); store reads/req`,
      `${fmt(r.latency.p50, 2)} / ${fmt(r.latency.p99, 2)} (${fmtInt(r.rps)}); ${reads(r)}`,
    );
    row(
      `4. Entity batching (_entities, ${ENTITIES_CONNECTIONS} conn), ${currentStore}`,
      `${n} representation${n === 1 ? "" : "s"}: p50 / p99 ms; store reads/req`,
      `${fmt(r.latency.p50, 2)} / ${fmt(r.latency.p99, 2)} ms (${fmtInt(r.rps)} req/s); reads ${reads(r)}`,
      "",
      n === 1 ? "reference" : `${fmt(r.latency.p50 / results[1].latency.p50, 2)}× the p50 of 1`,
      n === 100 ? "≤ 3× p50 of 1" : "—",
      n === 100 ? withErrorFlag(r.latency.p50 / results[1].latency.p50 <= 3 ? "PASS" : "MISS", errors) : "—",
      errors,
    );
  }
  const hundred = results[100];
  sideBySide("_entities × 100: p50 ÷ p50 of × 1", `${fmt(hundred.latency.p50 / results[1].latency.p50, 2)}×`);
  row(
    `4. Entity batching (_entities, 100 reps), ${currentStore}`,
    "store reads per request",
    reads(hundred),
    "",
    reads(hundred),
    "= 1",
    hundred.storeReadsPerRequest === null ? "n/a (metric missing)" : withErrorFlag(Math.abs(hundred.storeReadsPerRequest - 1) < 0.05 ? "PASS" : "MISS", errors),
    errors,
  );
}

/** An `_entities` CPU attack: 5 aliases × 2,400 representations in one body under 100 kB. */
const ATTACK_BODY = JSON.stringify({
  query: `query(${[0, 1, 2, 3, 4].map((i) => `$r${i}:[_Any!]!`).join(",")}){ ${[0, 1, 2, 3, 4]
    .map((i) => `a${i}: _entities(representations:$r${i}){ ... on Worker { session { status } } }`)
    .join(" ")} }`,
  variables: Object.fromEntries([0, 1, 2, 3, 4].map((i) => [`r${i}`, Array.from({ length: 2400 }, () => ({}))])),
});
/**
 * An `_entities` cost attack: 500 representations × a fragment selecting `session` six times (five
 * aliases), 38 kB. Before entity fetches were weighed by cost it answered 200 with 3,000 FORBIDDEN
 * errors for a caller without scopes; now it costs 3,000 against a budget of 1,000 and is refused.
 */
const COST_ATTACK_BODY = JSON.stringify({
  query: `query($r:[_Any!]!){ _entities(representations:$r){ ...W } } fragment W on Worker { session { status } ${[1, 2, 3, 4, 5]
    .map((i) => `s${i}: session { status }`)
    .join(" ")} }`,
  variables: { r: Array.from({ length: 500 }, () => ({ __typename: "Worker", profileId: "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50" })) },
});
const HOSTILE_ROUNDS = QUICK ? 5 : 40;

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Deel hangs: DEADLINE_CALLS concurrent creates (distinct profiles) are held until the gateway's
 * deadline aborts them. Measures when each caller got its UPSTREAM_UNAVAILABLE, relative to
 * DEEL_TIMEOUT_MS after it sent the request: the real-time side of what the integration tests prove
 * on a clock they move by hand (the deadline ends the call, and nothing makes it wait longer).
 */
async function scenarioDeadline() {
  await sandboxControl("POST", "reset");
  await sandboxControl("POST", "faults", { fault: { kind: "hang" }, times: DEADLINE_CALLS, route: "create" });
  const overshootMs = [];
  const problems = [];
  try {
    await Promise.all(
      Array.from({ length: DEADLINE_CALLS }, async (_, i) => {
        const started = performance.now();
        const res = await gql(writeTokens[i % writeTokens.length], CREATE_MUTATION, { input: { profileId: profiles[900 + i] } });
        overshootMs.push(performance.now() - started - DEEL_TIMEOUT_MS);
        const code = res.json?.errors?.[0]?.extensions?.code;
        if (code !== "UPSTREAM_UNAVAILABLE") problems.push(`deadline: expected UPSTREAM_UNAVAILABLE, got HTTP ${res.status} ${res.text.slice(0, 200)}`);
      }),
    );
  } finally {
    await sandboxControl("DELETE", "faults");
    await sandboxControl("POST", "reset");
  }
  problemsByScenario.deadline = problems;
  overshootMs.sort((a, b) => a - b);
  const p50 = percentile(overshootMs, 50);
  const max = overshootMs[overshootMs.length - 1];
  const errors = problems.length === 0 ? "0" : `${problems.length} unexpected answer(s)`;
  row(
    `7. Deadline (Deel hangs, DEEL_TIMEOUT_MS ${DEEL_TIMEOUT_MS}, ${DEADLINE_CALLS} concurrent creates)`,
    "answer after the deadline: p50 / max (ms)",
    `${signed(p50, 1)} / ${signed(max, 1)}`,
    "—",
    `earliest ${signed(overshootMs[0], 1)} ms`,
    "max ≤ 500 ms",
    withErrorFlag(max <= 500 ? "PASS" : "MISS", errors),
    errors,
  );
}

/**
 * Rounds of 8 concurrent attack requests (half anonymous, half with an admin token: refused before
 * any resolver either way), while /healthz is polled back to back. Measures how fast an attack is
 * refused and how long /healthz waits meanwhile.
 */
async function scenarioHostile() {
  const healthUrl = new URL("/healthz", gatewayUrl);
  const attackMs = [];
  const healthMs = [];
  const problems = [];
  const timed = async (send) => {
    const t0 = performance.now();
    const res = await send();
    const ms = performance.now() - t0;
    return { res, ms };
  };
  for (let round = 0; round < HOSTILE_ROUNDS; round++) {
    let attacking = true;
    const poll = (async () => {
      while (attacking) {
        const { res, ms } = await timed(() => fetch(healthUrl));
        await res.arrayBuffer();
        healthMs.push(ms);
      }
    })();
    // Odd rounds: the 96 kB over-cap attack, half anonymous, half as admin. Even rounds: the
    // 500 × 6 cost attack, half from a caller without scopes, half as admin.
    const cost = round % 2 === 0;
    const attacks = Array.from({ length: 8 }, (_, i) =>
      timed(() =>
        fetch(gatewayUrl, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(i % 2 === 1 ? { authorization: `Bearer ${adminToken}` } : cost ? { authorization: `Bearer ${noScopeToken}` } : {}),
          },
          body: cost ? COST_ATTACK_BODY : ATTACK_BODY,
        }),
      ),
    );
    for (const { res, ms } of await Promise.all(attacks)) {
      await res.arrayBuffer();
      attackMs.push(ms);
      if (res.status !== 400 && res.status !== 401) problems.push(`attack answered HTTP ${res.status}`);
    }
    attacking = false;
    await poll;
  }
  problemsByScenario.hostile = problems;
  attackMs.sort((a, b) => a - b);
  healthMs.sort((a, b) => a - b);
  const errors = problems.length;
  const attackP99 = percentile(attackMs, 99);
  const healthP99 = percentile(healthMs, 99);
  row(
    `6. Hostile _entities (8 at once, ${HOSTILE_ROUNDS} rounds)`,
    "attack refused: p50 / p99 ms",
    `${fmt(percentile(attackMs, 50), 2)} / ${fmt(attackP99, 2)} ms (${attackMs.length} requests: 96 kB over the representation cap, and 500 × 6 over the cost budget)`,
    "",
    `${fmt(attackP99, 2)} ms`,
    "< 50 ms",
    withErrorFlag(attackP99 < 50 ? "PASS" : "MISS", String(errors)),
    String(errors),
  );
  row(
    `6. Hostile _entities (8 at once, ${HOSTILE_ROUNDS} rounds)`,
    "/healthz while attacked: p50 / p99 ms",
    `${fmt(percentile(healthMs, 50), 2)} / ${fmt(healthP99, 2)} ms (${healthMs.length} probes)`,
    "",
    `${fmt(healthP99, 2)} ms`,
    "< 50 ms",
    withErrorFlag(healthP99 < 50 ? "PASS" : "MISS", String(errors)),
    String(errors),
  );
}

const MEMORY_WARMUP_REQUESTS = QUICK ? 2_000 : 30_000;

async function scenarioMemory() {
  const body = JSON.stringify({ query: READ_QUERY, variables: { profileId: profiles[0] } });
  const spec = {
    url: gatewayUrl,
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
    body,
    connections: READ_CONNECTIONS,
    graphql: true,
  };
  // V8 grows its heap to a steady size over the first tens of thousands of requests; measuring from
  // there separates retained memory (a leak) from the heap finding its working size.
  await load(`memory warm-up ${fmtInt(MEMORY_WARMUP_REQUESTS)} requests`, { ...spec, amount: MEMORY_WARMUP_REQUESTS }, gateway);
  await sleep(2000);
  const before = procMemory(gateway.pid);
  const heapBefore = await metricValue("nodejs_heap_size_used_bytes");
  const r = await load(`memory ${fmtInt(MEMORY_REQUESTS)} requests`, { ...spec, amount: MEMORY_REQUESTS }, gateway);
  const peak = procMemory(gateway.pid);
  await sleep(2000);
  const after = procMemory(gateway.pid);
  const heapAfter = await metricValue("nodejs_heap_size_used_bytes");
  const mb = (bytes) => (bytes === null ? "n/a" : fmt(bytes / 1024 ** 2));
  notes.push(
    `Memory: V8 heap used (prom-client \`nodejs_heap_size_used_bytes\`, no forced GC) ${mb(heapBefore)} → ${mb(heapAfter)} MB; ` +
      `RSS right after the last request ${fmt(peak.rssMb)} MB, VmHWM (peak RSS of the whole bench) ${fmt(after.hwmMb)} MB.`,
  );
  const growth = after.rssMb - before.rssMb;
  const errors = sumErrors([r]);
  const judged = MEMORY_REQUESTS >= 100_000;
  row(
    `5. Memory (RSS over ${fmtInt(MEMORY_REQUESTS)} read requests)`,
    "RSS before → after (MB)",
    `${fmt(before.rssMb)} → ${fmt(after.rssMb)} MB (heap used ${mb(heapBefore)} → ${mb(heapAfter)} MB)`,
    "",
    `${signed(growth)} MB`,
    "≤ 30 MB per 100,000",
    judged ? withErrorFlag(growth <= 30 ? "PASS" : "MISS", errors) : "n/a (fewer than 100,000 requests)",
    errors,
  );
}

// --- the scenarios, one entry each ------------------------------------------------------------------

/**
 * Every scenario, in the order they run: `name` (for BENCH_SCENARIOS), `title` (rows and log),
 * `run` (uses the globals `gateway`, `gatewayUrl`, `currentStore`), `perStore` (runs once on each
 * gateway: SQLite, then PostgreSQL), `needsBaseline`. Add a scenario by adding an entry.
 */
const SCENARIO_LIST = [
  { name: "read", title: "1. Read path", run: scenarioRead, perStore: true, needsBaseline: true },
  { name: "write", title: "2. Write path", run: scenarioWrite },
  { name: "latency", title: "3. Added latency", run: scenarioLatency },
  { name: "entities", title: "4. Entity batching", run: scenarioEntities, perStore: true },
  { name: "memory", title: "5. Memory", run: scenarioMemory },
  { name: "hostile", title: "6. Hostile _entities", run: scenarioHostile },
  { name: "deadline", title: "7. Deadline", run: scenarioDeadline },
  // Its own gateways (tracing off, OTLP export, ftv1) and OTLP sink: bench/tracing.mjs.
  { name: "tracing", title: "8. Tracing overhead", run: () => runTracingBench({ duration: DURATION, rounds: ROUNDS, warmup: WARMUP, log }).then((r) => (r.rows.forEach((cells) => row(...cells)), notes.push(...r.notes))) },
];
const SCENARIOS = env.BENCH_SCENARIOS ? env.BENCH_SCENARIOS.split(",").map((s) => s.trim()).filter(Boolean) : SCENARIO_LIST.map((s) => s.name);

// --- the gateways, one per store ----------------------------------------------------------------------

function storeName(url) {
  if (url.startsWith("sqlite:")) return "SQLite";
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return "PostgreSQL";
  if (url.startsWith("redis://") || url.startsWith("rediss://")) return "Redis";
  if (url.startsWith("memory:")) return "memory";
  return url.split(":")[0];
}

/** A URL without its userinfo, for the log. */
function describeUrl(url) {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

/** PostgreSQL's version when it answered, for the results. */
let POSTGRES_SERVER_VERSION = null;

/** Null when PostgreSQL answers; otherwise why not. */
async function probePostgres(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000, query_timeout: 2000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query("SHOW server_version");
    POSTGRES_SERVER_VERSION = rows[0]?.server_version ?? null;
    return null;
  } catch (error) {
    return error instanceof Error ? error.message || String(error) : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drops the bench's own schema (never another: the name is the one this run made up). */
async function dropPostgresSchema(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${POSTGRES_SCHEMA} CASCADE`);
    log(`dropped PostgreSQL schema ${POSTGRES_SCHEMA}`);
  } catch (error) {
    log(`could not drop PostgreSQL schema ${POSTGRES_SCHEMA}: ${error.message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts the built gateway with `gatewayEnv` on a free port, waits for /healthz, and mints the
 * ACTIVE session the read path reads. Resolves to `{ store, handle, url }`; on failure stops it and throws.
 */
async function startGateway(store, gatewayEnv) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  const nodeArgs = CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", TMP_DIR] : [];
  const handle = await startChild(`gateway (${store})`, [...nodeArgs, path.join(ROOT, "dist/main.js")], { ...gatewayEnv, PORT: String(port) }, { jsonUrl: false });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (handle.exited) throw new Error(`the gateway exited with ${handle.exited.code}; output:\n${handle.tail}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`the gateway did not answer /healthz in 30 s; output:\n${handle.tail}`);
      await sleep(100);
    }
    // The read path needs an ACTIVE session in the ledger: mint one through the gateway.
    const created = await post(url, { query: CREATE_MUTATION, variables: { input: { profileId: profiles[0] } } }, { authorization: `Bearer ${adminToken}` });
    if (created.status !== 200 || created.json?.errors || !created.json?.data?.createWorkerSession) {
      throw new Error(`the seed createWorkerSession failed: HTTP ${created.status} ${created.text.slice(0, 500)}`);
    }
  } catch (error) {
    await stopChild(handle);
    throw error;
  }
  return { store, handle, url, seeded: false };
}

/** The per-store measures, one column per store; empty when only one store ran. */
function renderStores() {
  const stores = targets.map((t) => t.store);
  if (stores.length < 2 || byStore.size === 0) return "";
  const header = ["Measure", ...stores];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const [measure, values] of byStore) lines.push(`| ${[measure, ...stores.map((s) => values.get(s) ?? "—")].map((c) => String(c).replaceAll("|", "\\|")).join(" | ")} |`);
  return lines.join("\n");
}

// --- main ------------------------------------------------------------------------------------------

function machine() {
  const cpus = os.cpus();
  let model = cpus[0]?.model ?? "unknown";
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? model;
  } catch {
    /* keep os.cpus() */
  }
  let commit = "unknown";
  let dirty = 0;
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    dirty = execFileSync("git", ["status", "--porcelain"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean).length;
  } catch {
    /* not a git checkout */
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: model,
    cores: os.availableParallelism?.() ?? cpus.length,
    memGb: (os.totalmem() / 1024 ** 3).toFixed(1),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    commit,
    dirty,
  };
}

function renderTable() {
  const header = ["Scenario", "Measure", "Gateway", "Baseline", "Result", "Target", "Status", "Errors"];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const r of rows) {
    lines.push(`| ${[r.scenario, r.measure, r.gateway, r.baseline, r.result, r.target, r.status, r.errors].map((c) => String(c).replaceAll("|", "\\|")).join(" | ")} |`);
  }
  return lines.join("\n");
}

function renderRuns() {
  const header = ["Run", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "responses", "errors", "server CPU µs/req", "load generator (cores)", "other load (cores)"];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const r of runs) {
    lines.push(
      `| ${[
        r.label,
        fmtInt(r.rps),
        fmt(r.latency.p50, 2),
        fmt(r.latency.p90, 2),
        fmt(r.latency.p99, 2),
        fmt(r.latency.max, 1),
        fmtInt(r.responses),
        describeErrors(r),
        fmt(r.serverCpuUsPerReq, 0),
        fmt(r.loaderCpuMs / r.wallMs, 2),
        fmt(r.foreignCores, 2),
      ].join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

async function main() {
  const info = machine();
  const loadBefore = loadavg();
  const started = performance.now();
  log(`node ${info.node}, ${info.cores} × ${info.cpu}, load average ${loadBefore}`);
  log(`scenarios ${SCENARIOS.join(",")}; ${DURATION} s runs, ${ROUNDS} round(s)${QUICK ? " (BENCH_QUICK)" : ""}`);
  if (!existsSync(path.join(ROOT, "dist/main.js"))) {
    log("dist/main.js is missing: run `npm run build` first (or `npm run bench`)");
    process.exit(2);
  }
  mkdirSync(TMP_DIR, { recursive: true });
  tmpDir = mkdtempSync(path.join(os.tmpdir(), "wsg-bench-"));

  profiles = Array.from({ length: PROFILE_COUNT }, () => randomUUID());
  const profilesFile = path.join(tmpDir, "profiles.json");
  writeFileSync(profilesFile, JSON.stringify(profiles));

  const sign = (sub, scopes = SCOPES) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ scope: scopes.join(" ") })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(sub)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(new TextEncoder().encode(JWT_SECRET));
  };
  adminToken = await sign("bench-admin");
  noScopeToken = await sign("bench-no-scope", []);
  writeTokens = await Promise.all(Array.from({ length: WRITE_CALLERS }, (_, i) => sign(`bench-writer-${i}`)));

  try {
    sandbox = await startChild("Deel sandbox", [path.join(BENCH_DIR, "sandbox.mjs")], {
      BENCH_SANDBOX_PROFILES_FILE: profilesFile,
      DEEL_SANDBOX_ORG_TOKEN: ORG_TOKEN,
      DEEL_SANDBOX_LATENCY_MS: "0",
    });
  } catch (error) {
    log(`the Deel sandbox failed to start: ${error.message}`);
    process.exit(2);
  }

  const baseEnv = {
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    DEEL_API_URL: sandbox.info.url,
    DEEL_API_TOKEN: ORG_TOKEN,
    DEEL_TIMEOUT_MS: String(DEEL_TIMEOUT_MS),
    DEEL_RATE_LIMIT_RPS: "0",
    AUTH_JWT_SECRET: JWT_SECRET,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    LOG_LEVEL,
    CALLER_MUTATIONS_PER_MINUTE: CALLER_QUOTA,
    SHUTDOWN_GRACE_MS: "2000",
  };
  const primaryStore = env.BENCH_STORE_URL || `sqlite:${path.join(tmpDir, "bench.db")}`;
  try {
    targets.push(await startGateway(storeName(primaryStore), { ...baseEnv, SESSION_STORE_URL: primaryStore }));
  } catch (error) {
    log(`the gateway failed to start: ${error.message}`);
    await stopChild(sandbox);
    rmSync(tmpDir, { recursive: true, force: true });
    process.exit(1);
  }
  [{ handle: gateway, url: gatewayUrl }] = targets;
  currentStore = targets[0].store;
  log(`gateway pid ${gateway.pid} at ${gatewayUrl}; sandbox at ${sandbox.info.url}`);

  // The second gateway, on PostgreSQL: only the per-store scenarios load it. Skipped (with a row
  // saying why) when PostgreSQL does not answer.
  let postgresSkipped = POSTGRES_URL === null ? "BENCH_POSTGRES=0" : null;
  if (POSTGRES_URL !== null && targets[0].store !== "PostgreSQL") {
    const unreachable = await probePostgres(POSTGRES_URL);
    if (unreachable !== null) postgresSkipped = `PostgreSQL at ${describeUrl(POSTGRES_URL)} did not answer: ${unreachable}`;
    else {
      try {
        targets.push(await startGateway("PostgreSQL", { ...baseEnv, SESSION_STORE_URL: POSTGRES_URL, POSTGRES_SCHEMA }));
        log(`PostgreSQL gateway pid ${targets[1].handle.pid} at ${targets[1].url} (schema ${POSTGRES_SCHEMA})`);
      } catch (error) {
        postgresSkipped = `the PostgreSQL gateway failed to start: ${String(error.message).split("\n")[0].slice(0, 200)}`;
      }
    }
  }
  if (postgresSkipped !== null) log(`PostgreSQL rows skipped: ${postgresSkipped}`);

  // The baseline answers exactly what the gateway answers for the read query.
  const seeded = await gql(adminToken, READ_QUERY, { profileId: profiles[0] });
  const baselineData = path.join(tmpDir, "baseline.json");
  writeFileSync(baselineData, JSON.stringify({ [profiles[0]]: seeded.json?.data?.workerSession ?? null }));
  try {
    baseline = await startChild("baseline", [path.join(BENCH_DIR, "baseline-server.mjs")], { BASELINE_DATA: baselineData });
  } catch (error) {
    log(`the baseline failed to start: ${error.message}`);
  }

  try {
    plainApollo = await startChild("plain-apollo", [path.join(BENCH_DIR, "plain-apollo-server.mjs")], { BASELINE_DATA: baselineData });
  } catch (error) {
    log(`the plain Apollo reference failed to start: ${error.message}`);
  }

  const loadDuring = [];
  for (const name of SCENARIOS) {
    const scenario = SCENARIO_LIST.find((s) => s.name === name);
    if (!scenario) {
      log(`unknown scenario "${name}" (known: ${SCENARIO_LIST.map((s) => s.name).join(", ")})`);
      continue;
    }
    for (const target of scenario.perStore ? targets : targets.slice(0, 1)) {
      ({ handle: gateway, url: gatewayUrl, store: currentStore } = target);
      const title = scenario.perStore ? `${scenario.title}, ${target.store}` : scenario.title;
      log(`— ${title} —`);
      const firstRun = runs.length;
      try {
        if (gateway.exited) throw new Error(`the gateway is gone (exit ${gateway.exited.code})`);
        if (scenario.needsBaseline && !baseline) throw new Error("the baseline is not running");
        await scenario.run();
      } catch (error) {
        log(`${title} failed: ${error.stack ?? error.message}`);
        row(title, "—", "—", "—", `failed: ${String(error.message).split("\n")[0].slice(0, 160)}`, "—", "FAIL");
      }
      const own = runs.slice(firstRun);
      loadDuring.push({ title, foreign: mean(own.map((r) => r.foreignCores)), steal: mean(own.map((r) => r.stealCores)), load: loadavg() });
    }
    if (scenario.perStore && postgresSkipped !== null) row(`${scenario.title}, PostgreSQL`, "—", "—", "—", `skipped: ${postgresSkipped}`, "—", "—");
  }
  ({ handle: gateway, url: gatewayUrl, store: currentStore } = targets[0]);

  const loadAfter = loadavg();
  const gatewayWarnings = targets.reduce((sum, t) => sum + t.handle.warnLines, 0);
  const exit = await stopChild(gateway);
  for (const target of targets.slice(1)) await stopChild(target.handle);
  await stopChild(baseline);
  await stopChild(plainApollo);
  await stopChild(sandbox);
  if (targets.some((t) => t.store === "PostgreSQL" && t !== targets[0])) await dropPostgresSchema(POSTGRES_URL);
  const elapsed = (performance.now() - started) / 1000;

  let profileFile = null;
  if (CPU_PROF) {
    const candidates = readdirSync(TMP_DIR)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => path.join(TMP_DIR, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    profileFile = candidates[0] ?? null;
  }

  const table = renderTable();
  const storesTable = renderStores();
  process.stdout.write(`\n${table}\n\n${storesTable ? `${storesTable}\n\n` : ""}`);
  const loadLines = loadDuring
    .map((l) => `${l.title.replace(/^(\d)\. /, "Scenario $1, ")}: other processes used ${fmt(l.foreign, 2)} cores on average, steal ${fmt(l.steal, 2)}; load average after ${l.load}`)
    .join("\n  - ");
  const warningTails = targets.filter((t) => t.handle.warnLines > 0).map((t) => `${t.store} gateway (last output):\n${t.handle.tail.slice(-1500)}\n`);
  process.stdout.write(
    `node ${info.node}, ${info.cores} × ${info.cpu}; load average before ${loadBefore}, after ${loadAfter}; ${fmt(elapsed, 0)} s\n` +
      `${gatewayWarnings > 0 ? `the gateways wrote ${gatewayWarnings} warn/error log line(s); ${warningTails.join("")}` : ""}` +
      `${profileFile ? `CPU profile: ${path.relative(ROOT, profileFile)} (summarise: node bench/profile-summary.mjs ${path.relative(ROOT, profileFile)})\n` : ""}` +
      `results: ${path.relative(ROOT, RESULTS_FILE)}\n`,
  );

  const problems = Object.entries(problemsByScenario).flatMap(([, list]) => list);
  const md = `# Benchmark results (\`npm run bench\`)

- **Date:** ${info.date}
- **Machine:** ${info.cores} × ${info.cpu}, ${info.memGb} GB RAM, ${info.kernel}
- **Node:** ${info.node}
- **Commit:** ${info.commit}${info.dirty ? ` (+ ${info.dirty} uncommitted change(s) in the working tree)` : ""}
- **Load average** (1 / 5 / 15 min): before ${loadBefore}, after ${loadAfter}
- **Settings:** ${DURATION} s per measured run, ${ROUNDS} alternating round(s), ${WARMUP} s warm-up per target${QUICK ? ", BENCH_QUICK=1 (smoke run: not representative)" : ""}; gateway LOG_LEVEL=${LOG_LEVEL}${CPU_PROF ? ", **--cpu-prof on (slower)**" : ""}; total ${fmt(elapsed, 0)} s
- **Load from other processes during each scenario** (busy CPU not spent by the bench's own processes):
  - ${loadLines}

## Results

${table}
${storesTable ? `\n## SQLite and PostgreSQL side by side\n\nThe same scenarios in the same run, one gateway per store (PostgreSQL ${POSTGRES_SERVER_VERSION ?? ""} on this machine, over loopback, schema \`wsgbench_…\` created by the gateway's migrations and dropped afterwards). PostgreSQL's own processes are not the gateway's: their CPU is counted as "other load".\n\n${storesTable}\n` : ""}
${notes.map((n) => `- ${n}`).join("\n")}
${gatewayWarnings > 0 ? `- The gateway wrote ${gatewayWarnings} warn/error log line(s) during the run.\n` : ""}${problems.length > 0 ? `- Sampled requests outside the runs found problems:\n${problems.slice(0, 10).map((p) => `  - \`${p.replaceAll("`", "'")}\``).join("\n")}\n` : ""}
## Every run

${renderRuns()}

## How to read this

- Gateway and baseline runs **alternate** in one session (warm-up, then gateway, baseline, gateway, baseline…);
  the table shows the mean of the rounds. Absolute req/s depend on the machine and on whatever else
  runs on it; the **ratios** are what to compare between runs. "Other load" above says how noisy it was.
- The load generator (autocannon, \`bench/load.mjs\`) runs in its own process; on a 2-core machine it
  competes with the server for CPU, for the gateway and the baseline alike. When it needs a whole core
  ("load generator (cores)" near 1 below), the baseline's rate is the generator's limit, not the
  baseline's, and the read-path ratio flatters the gateway: "server CPU µs/req" compares the two
  servers without that limit.
- **Read path:** \`workerSession\` for an ACTIVE session with a valid caller JWT, against a bare
  \`node:http\` handler that parses the same JSON body and answers the same JSON from a Map.
- **Stores:** the read path and \`_entities\` run on every store (SQLite, then PostgreSQL); the other
  scenarios on the first (SQLite, or \`BENCH_STORE_URL\`).
- **Write path / added latency:** \`createWorkerSession\` through the gateway (caller JWT, GraphQL,
  Deel call over undici, ledger write in SQLite) against a POST straight to the sandbox. Requests cycle
  through ${PROFILE_COUNT} worker profiles so that no two in flight share one (the gateway orders work per
  profile). "Added" = gateway percentile − direct percentile, both with the sandbox answering after ${DEEL_LATENCY_MS} ms.
- **Entity batching:** \`_entities\` with 1, 10 and 100 distinct \`Worker\` representations per request,
  one connection (pure latency), each representation a worker with an ACTIVE session (every profile is
  minted through each gateway before its first run). Store reads per request come from \`wsg_store_reads_total\` on \`/metrics\`,
  read before and after the run.
- **Memory:** VmRSS of the gateway process after warm-up and 2 s after ${fmtInt(MEMORY_REQUESTS)} read requests.
- Latency percentiles are computed from every 2xx response time (fractional ms). "Errors" counts
  non-2xx answers, connection errors, timeouts and 200 answers with GraphQL \`errors\`; a scenario with
  any is flagged "(errors!)".
- Targets are shown by the benchmark, not enforced by tests: PASS/MISS is information, the exit code
  only says whether the harness itself ran.
`;
  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  writeFileSync(RESULTS_FILE, md);
  rmSync(tmpDir, { recursive: true, force: true });
  if (exit && exit.code !== 0 && exit.code !== null) log(`the gateway exited with ${exit.code} on SIGTERM`);
  process.exit(0);
}

main().catch((error) => {
  log(`bench failed: ${error.stack ?? error.message}`);
  killAll();
  process.exit(1);
});
