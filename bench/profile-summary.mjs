// Summarises a V8 .cpuprofile (e.g. from `BENCH_CPU_PROF=1 npm run bench`): the top functions and
// the top modules by self time. `node bench/profile-summary.mjs [file.cpuprofile] [top=15]`; without a
// file it takes the newest one in bench/.tmp. Percentages are of busy (non-idle) time.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, "..");
let file = process.argv[2];
const top = Number(process.argv[3] ?? 15);
if (!file) {
  const dir = path.join(BENCH_DIR, ".tmp");
  file = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => path.join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) {
    process.stderr.write("no .cpuprofile in bench/.tmp: run BENCH_CPU_PROF=1 npm run bench first\n");
    process.exit(1);
  }
}
const profile = JSON.parse(readFileSync(file, "utf8"));

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map(); // node id → µs
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
const busy = total - [...idleIds].reduce((a, id) => a + (self.get(id) ?? 0), 0);

/** Shortens a script URL to a module: a package under node_modules, a file of this repo, or node:… */
function moduleOf(url) {
  if (!url) return "(native / V8)";
  if (url.startsWith("node:")) return url;
  const clean = url.replace(/^file:\/\//, "");
  const nm = clean.lastIndexOf("/node_modules/");
  if (nm !== -1) {
    const rest = clean.slice(nm + "/node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  return path.relative(ROOT, clean) || clean;
}

function fileOf(url) {
  if (!url) return "";
  const clean = url.replace(/^file:\/\//, "");
  const nm = clean.lastIndexOf("/node_modules/");
  return nm !== -1 ? clean.slice(nm + "/node_modules/".length) : url.startsWith("node:") ? url : path.relative(ROOT, clean);
}

const functions = new Map();
const modules = new Map();
for (const [id, us] of self) {
  const { callFrame } = byId.get(id);
  const name = callFrame.functionName || "(anonymous)";
  const where = callFrame.url ? `${fileOf(callFrame.url)}:${callFrame.lineNumber + 1}` : "";
  const key = `${name} ${where}`.trim();
  functions.set(key, (functions.get(key) ?? 0) + us);
  const mod = moduleOf(callFrame.url);
  modules.set(mod, (modules.get(mod) ?? 0) + us);
}

// Inclusive time: each sample counts once for every distinct function on its stack.
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = (id) => {
  const { callFrame } = byId.get(id);
  const where = callFrame.url ? `${fileOf(callFrame.url)}:${callFrame.lineNumber + 1}` : "";
  return `${callFrame.functionName || "(anonymous)"} ${where}`.trim();
};
const inclusive = new Map();
for (const [id, us] of self) {
  if (idleIds.has(id)) continue;
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const key = keyOf(at);
    if (key === "(root)" || seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}

const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const print = (title, map) => {
  process.stdout.write(`\n${title}\n`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)} ${ms(us)}  ${key}\n`);
};
process.stdout.write(
  `${path.relative(process.cwd(), file)}: ${(total / 1e6).toFixed(1)} s of samples, ${(busy / 1e6).toFixed(1)} s busy (percentages are of busy time)\n`,
);
functions.delete("(idle)");
modules.set("(native / V8)", (modules.get("(native / V8)") ?? 0) - (total - busy));
print(`Top ${top} functions by self time`, functions);
print(`Top ${top} modules by self time`, modules);
print(`Top ${top} functions by inclusive time`, inclusive);
print(`Top ${top} functions of this repository (dist/) by inclusive time`, new Map([...inclusive].filter(([key]) => / dist\//.test(key))));
print(
  `Top ${top} library entry points by inclusive time`,
  new Map([...inclusive].filter(([key]) => /(graphql-shield|graphql-middleware|jose|dataloader|type-graphql|@apollo\/server|body-parser|cors|prom-client|graphql\/execution|graphql\/validation|graphql\/language)\//.test(key))),
);
