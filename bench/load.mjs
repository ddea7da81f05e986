// The load generator: one autocannon run in its own process, so that it never shares an event loop
// with the gateway or the baseline. `node bench/load.mjs <spec.json>`; prints one JSON line.
//
// spec: {
//   url, method?, headers?, body?,        the request (POST by default)
//   variants?: [{ body?, headers? }],     cycled across all connections by one shared counter, so
//                                         that concurrent requests carry different profile ids
//   connections, duration? (s) | amount?, timeout? (s, default 10),
//   graphql?: true                        count 2xx answers whose body holds "errors" (mismatches)
// }
//
// Latency percentiles are computed here from every 2xx response time (fractional ms, from
// process.hrtime), because autocannon's own histogram has 1 ms resolution.
import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const cpuStart = process.cpuUsage();

const options = {
  url: spec.url,
  method: spec.method ?? "POST",
  connections: spec.connections,
  timeout: spec.timeout ?? 10,
  headers: spec.headers ?? {},
};
if (spec.body !== undefined) options.body = spec.body;
if (spec.amount !== undefined) options.amount = spec.amount;
else options.duration = spec.duration;
if (spec.graphql) {
  // A GraphQL error still answers 200: autocannon counts these bodies as "mismatches".
  options.verifyBody = (body) => !body.includes('"errors"');
}
if (Array.isArray(spec.variants) && spec.variants.length > 0) {
  let counter = 0;
  const variants = spec.variants;
  options.requests = [
    {
      setupRequest(req) {
        const variant = variants[counter++ % variants.length];
        return {
          ...req,
          method: options.method,
          body: variant.body ?? spec.body,
          headers: { ...options.headers, ...variant.headers },
        };
      },
    },
  ];
}

const latencies = [];
const instance = autocannon(options, (error, result) => {
  if (error) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(error?.message ?? error) })}\n`);
    process.exit(1);
  }
  latencies.sort((a, b) => a - b);
  const pick = (p) => (latencies.length === 0 ? null : latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]);
  const mean = latencies.length === 0 ? null : latencies.reduce((a, b) => a + b, 0) / latencies.length;
  const responses = Object.values(result.statusCodeStats ?? {}).reduce((a, s) => a + s.count, 0);
  const cpu = process.cpuUsage(cpuStart);
  const out = {
    ok: true,
    durationS: result.duration,
    responses,
    ok2xx: result["2xx"],
    rps: result["2xx"] / result.duration,
    latency: { p50: pick(50), p90: pick(90), p99: pick(99), max: latencies.at(-1) ?? null, mean },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    resets: result.resets,
    graphqlErrors: spec.graphql ? result.mismatches : 0,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count])),
    loaderCpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
});
instance.on("response", (_client, statusCode, _bytes, responseTime) => {
  if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
});
