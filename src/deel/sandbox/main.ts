/**
 * Standalone Deel sandbox (`npm run deel-sandbox`), for benchmarks and multi-process tests.
 *
 * Environment: DEEL_SANDBOX_PORT (default 4010), DEEL_SANDBOX_LATENCY_MS, DEEL_SANDBOX_RATE_LIMIT_RPS,
 * DEEL_SANDBOX_TOKEN_LIFETIME_MS, DEEL_SANDBOX_ORG_TOKEN (optional fixed organization token).
 * Prints its URL, its organization token (a sandbox-only credential) and the seeded profile ids.
 */
import { startDeelSandbox, type SandboxOptions } from "./server.js";

function readNumber(name: string, fallback?: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  }
  return value;
}

async function main(): Promise<void> {
  const options: SandboxOptions = { host: "127.0.0.1" };
  const port = readNumber("DEEL_SANDBOX_PORT", 4010);
  if (port !== undefined) {
    if (!Number.isInteger(port) || port > 65535) throw new Error("DEEL_SANDBOX_PORT must be a port number");
    options.port = port;
  }
  const latencyMs = readNumber("DEEL_SANDBOX_LATENCY_MS");
  if (latencyMs !== undefined) options.latencyMs = latencyMs;
  const rateLimitRps = readNumber("DEEL_SANDBOX_RATE_LIMIT_RPS");
  if (rateLimitRps !== undefined) options.rateLimitRps = rateLimitRps;
  const tokenLifetimeMs = readNumber("DEEL_SANDBOX_TOKEN_LIFETIME_MS");
  if (tokenLifetimeMs !== undefined) options.tokenLifetimeMs = tokenLifetimeMs;
  const orgToken = process.env.DEEL_SANDBOX_ORG_TOKEN?.trim();
  if (orgToken) options.orgToken = orgToken;

  const sandbox = await startDeelSandbox(options);
  const lines = [
    `Deel sandbox listening at ${sandbox.url}`,
    `Organization token: ${sandbox.orgToken}`,
    `Read-only token (answered 403): ${sandbox.readOnlyToken}`,
    `Seeded worker profile ids:`,
    ...sandbox.profiles.map((id) => `  ${id}`),
    `Control routes: ${sandbox.origin}/__sandbox/{faults,settings,state/<profileId>,requests,reset} (organization token required)`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`Received ${signal}, closing the Deel sandbox\n`);
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`Deel sandbox failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
