import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { GatewayMetrics } from "./metrics.js";

export interface OpsRoutesDeps {
  /** Readiness: resolves when the session ledger answers. */
  ping(): Promise<void>;
  /**
   * Ledger writes kept while the store was away and not yet written (they are retried as soon as it
   * answers): reported by `/readyz`, 0 once an outage's work is settled.
   */
  pendingWrites?: () => number;
  metrics: GatewayMetrics;
}

/** Largest part of an unknown path echoed in a 404 body. */
const MAX_ECHOED_PATH = 200;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json; charset=utf-8");
  res.end(JSON.stringify(body));
}

/**
 * The operations routes: `GET /healthz` (the process answers), `GET /readyz` (the ledger answers;
 * 503 otherwise; either way with `pendingWrites`, the ledger writes still kept from an outage), `GET /metrics` (Prometheus text), and a JSON 404 for anything else. HEAD is
 * answered like GET, without a body.
 */
export function createOpsRoutes(deps: OpsRoutesDeps): (req: IncomingMessage & { log: Logger }, res: ServerResponse, path: string) => Promise<void> {
  return async (req, res, path) => {
    const method = req.method ?? "GET";
    const readable = method === "GET" || method === "HEAD";
    if (readable && path === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (readable && path === "/readyz") {
      const pending = deps.pendingWrites === undefined ? {} : { pendingWrites: deps.pendingWrites() };
      try {
        await deps.ping();
        return sendJson(res, 200, { status: "ready", ...pending });
      } catch (error) {
        req.log.warn({ err: error }, "readiness check failed: the session store does not answer");
        return sendJson(res, 503, { status: "unavailable", reason: "session store does not answer", ...pending });
      }
    }
    if (readable && path === "/metrics") {
      const text = await deps.metrics.registry.metrics();
      res.statusCode = 200;
      res.setHeader("content-type", deps.metrics.registry.contentType);
      res.end(text);
      return;
    }
    sendJson(res, 404, { error: "not found", path: path.slice(0, MAX_ECHOED_PATH) });
  };
}
