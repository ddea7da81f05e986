import type { ApolloServerPlugin } from "@apollo/server";
import { Kind, type OperationDefinitionNode } from "graphql";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { systemClock, type Clock } from "../base/clock.js";
import type { DeelEndpoint } from "../base/deel-endpoints.js";

/** Distinct label values kept; later ones count as "other" (a bound, whatever the schema grows to). */
const MAX_OPERATION_LABELS = 100;

/**
 * The `operation` label: the root fields the operation selects (sorted, `+`-joined), e.g.
 * `workerSession` or `_entities`. Root fields are names from the schema, so nobody can mint new
 * label values by naming operations; a request that never resolved to an operation (parse or
 * validation failure, refused before execution) is `invalid`.
 */
function rootFields(operation: OperationDefinitionNode | undefined): string {
  if (operation === undefined) return "invalid";
  const names = new Set<string>();
  for (const selection of operation.selectionSet.selections) {
    names.add(selection.kind === Kind.FIELD ? selection.name.value : "fragment");
  }
  return [...names].sort().join("+");
}

/** What the Deel layer reports about itself, read when /metrics is scraped. */
export interface DeelGauges {
  budgetQueueDepth(): number;
  /** 0 closed, 1 half-open, 2 open. */
  breakerState(): number;
}

/**
 * The gateway's Prometheus metrics, in a registry of its own (so several gateways can live in one
 * test process). Names are prefixed `wsg_`.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly operations: Counter<"operation" | "outcome">;
  private readonly operationSeconds: Histogram<"operation">;
  /** `endpoint` is one of DEEL_ENDPOINTS: the names the Deel layer reports, never a path with an id. */
  private readonly deelCalls: Counter<"endpoint" | "status">;
  private readonly deelSeconds: Histogram<"endpoint">;
  private readonly budgetWaits: Histogram;
  readonly storeReads: Counter<"op">;
  private readonly names = new Set<string>();

  /** `clock` times the GraphQL operations (the Deel layer times its own calls). Default: the real clock. */
  constructor(private readonly clock: Clock = systemClock) {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.operations = new Counter({
      name: "wsg_graphql_operations_total",
      help: "GraphQL operations by the root fields they select and outcome (OK or the first error code).",
      labelNames: ["operation", "outcome"],
      registers,
    });
    this.operationSeconds = new Histogram({
      name: "wsg_graphql_operation_duration_seconds",
      help: "Time from receiving a GraphQL operation to sending its response.",
      labelNames: ["operation"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.deelCalls = new Counter({
      name: "wsg_deel_calls_total",
      help: "HTTP attempts toward Deel by endpoint and status (0 when no answer came).",
      labelNames: ["endpoint", "status"],
      registers,
    });
    this.deelSeconds = new Histogram({
      name: "wsg_deel_call_duration_seconds",
      help: "Latency of each HTTP attempt toward Deel.",
      labelNames: ["endpoint"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.budgetWaits = new Histogram({
      name: "wsg_deel_budget_wait_seconds",
      help: "How long calls waited for a slot in the organization's Deel budget.",
      buckets: [0, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8],
      registers,
    });
    this.storeReads = new Counter({
      name: "wsg_store_reads_total",
      help: "Reads of the session ledger (get: one profile, get_many: one batch; history: one read of history pages).",
      labelNames: ["op"],
      registers,
    });
  }

  /** Gauges read from the Deel layer at scrape time. */
  watchDeel(gauges: DeelGauges): void {
    new Gauge({
      name: "wsg_deel_budget_queue_depth",
      help: "Calls waiting for a slot in the organization's Deel budget.",
      registers: [this.registry],
      collect() {
        this.set(gauges.budgetQueueDepth());
      },
    });
    new Gauge({
      name: "wsg_deel_breaker_state",
      help: "Circuit breaker toward Deel: 0 closed, 1 half-open, 2 open.",
      registers: [this.registry],
      collect() {
        this.set(gauges.breakerState());
      },
    });
  }

  deelCall(endpoint: DeelEndpoint, status: number, seconds: number): void {
    this.deelCalls.inc({ endpoint, status: String(status) });
    this.deelSeconds.observe({ endpoint }, seconds);
  }

  budgetWait(seconds: number): void {
    this.budgetWaits.observe(seconds);
  }

  private label(operation: OperationDefinitionNode | undefined): string {
    const name = rootFields(operation);
    if (this.names.has(name)) return name;
    if (this.names.size >= MAX_OPERATION_LABELS) return "other";
    this.names.add(name);
    return name;
  }

  /** An Apollo plugin that counts every operation by its root fields and outcome. */
  apolloPlugin(): ApolloServerPlugin {
    return {
      requestDidStart: async () => {
        const started = this.clock.now();
        return {
          willSendResponse: async ({ operation: resolved, response, errors }) => {
            const operation = this.label(resolved);
            let outcome = "OK";
            // The formatted errors carry the final code (after masking); raw ones are the fallback.
            const first = (response.body.kind === "single" ? response.body.singleResult.errors?.[0] : undefined) ?? errors?.[0];
            if (first !== undefined) {
              const code = first.extensions?.code;
              outcome = typeof code === "string" ? code : "INTERNAL_SERVER_ERROR";
            }
            this.operations.inc({ operation, outcome });
            this.operationSeconds.observe({ operation }, Math.max(0, this.clock.now() - started) / 1000);
          },
        };
      },
    };
  }
}
