import "reflect-metadata";
import { createApp } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { localBanner, startLocalMode, type LocalMode } from "./local-mode.js";

/** Process entry: config → app → listen; signals. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`worker-session-gateway: configuration error: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }

  const local: LocalMode | undefined = config.localMode ? await startLocalMode(config) : undefined;
  const app = await createApp(local?.config ?? config);
  const url = await app.listen();
  const tracing = config.tracing.enabled ? config.tracing.tracesUrl : "off";
  app.logger.info({ url, localMode: config.localMode, store: config.store.kind, tracing }, "worker session gateway listening");
  if (local !== undefined) process.stdout.write(`${localBanner(url, local)}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, "shutting down: draining in-flight requests");
    void (async () => {
      try {
        await app.close();
        await local?.sandbox.close();
        app.logger.info("shut down cleanly");
        process.exit(0);
      } catch (error) {
        app.logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      }
    })();
  };
  // A stray rejection is logged, never allowed to take the process (and its in-flight requests) down.
  process.on("unhandledRejection", (reason) => app.logger.error({ err: reason }, "unhandled promise rejection"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(`worker-session-gateway: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
