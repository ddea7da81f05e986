import { createApp, type App } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/http/logger.js";
import { startLocalMode, type LocalMode } from "../../src/local-mode.js";
import { LogCapture } from "./logs.js";

export interface LocalGateway {
  url: string;
  app: App;
  local: LocalMode;
  logs: LogCapture;
  close(): Promise<void>;
}

/**
 * The gateway as `npm start` runs it in local mode: no Deel token outside production, so
 * `startLocalMode` brings up the built-in Deel sandbox and a dev signing secret. `env` is the
 * operator's environment (e.g. CORS_ORIGINS); the process environment is not read.
 */
export async function startLocalGateway(env: Record<string, string> = {}): Promise<LocalGateway> {
  const operator = loadConfig({ HOST: "127.0.0.1", PORT: "0", SESSION_STORE_URL: "memory:", SHUTDOWN_GRACE_MS: "2000", ...env });
  if (!operator.localMode) throw new Error("startLocalGateway: this environment does not put the gateway in local mode");
  const local = await startLocalMode(operator, {});
  const logs = new LogCapture();
  const app = await createApp(local.config, { logger: createLogger("trace", logs) });
  const url = await app.listen();
  return {
    url,
    app,
    local,
    logs,
    async close() {
      await app.close();
      await local.sandbox.close();
    },
  };
}
