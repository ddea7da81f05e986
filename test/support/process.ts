import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

/** The built program; `WSG_MAIN` points the tests at another build (e.g. a private `dist-*` folder). */
export const MAIN = process.env.WSG_MAIN ?? resolve(import.meta.dirname, "../../dist/main.js");

export interface GatewayProcess {
  child: ChildProcess;
  /** The GraphQL URL the process printed once listening. */
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves once the output matches `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Every gateway process started here and still running: none outlives the test process. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts the built program (`node dist/main.js`) as `npm start` does, with exactly `env` (plus
 * PATH), and waits for it to say where it listens. `npm test` builds first.
 */
export async function startGatewayProcess(env: Record<string, string>, options: { cwd?: string; timeoutMs?: number } = {}): Promise<GatewayProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does)`);
  const child = spawn(process.execPath, [MAIN], {
    cwd: options.cwd ?? resolve(import.meta.dirname, "../.."),
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  const exited = once(child, "exit");
  running.add(child);
  child.once("exit", () => running.delete(child));

  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start in time; output:\n${out}`)), options.timeoutMs ?? 20_000);
    const check = () => {
      const match = /"url":"(http:\/\/[^"]+\/graphql)"/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1] as string);
      }
    };
    child.stdout?.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening; output:\n${out}`));
    });
  });

  return {
    child,
    url,
    output: () => out,
    async waitFor(pattern: RegExp, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (Date.now() > until) throw new Error(`output never matched ${pattern}; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      // A drain is bounded by SHUTDOWN_GRACE_MS; past a generous margin, stop waiting.
      const force = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const [code] = (await exited) as [number | null];
      clearTimeout(force);
      return code;
    },
  };
}

/** Runs the built program to completion (for start-up refusals) and returns its exit code and output. */
export async function runGatewayProcess(env: Record<string, string>, timeoutMs = 15_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, output };
}
