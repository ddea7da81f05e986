/**
 * The OpenTelemetry SDK, set up once at start-up when tracing is on: a tracer provider that batches
 * spans to an OTLP/HTTP (JSON) endpoint, the W3C `traceparent` propagator (so a router's trace
 * continues here), and an AsyncLocalStorage context manager (so a span started for a request is
 * the parent of the ledger and Deel spans made while serving it).
 *
 * The SDK's context and propagation APIs are process-wide by design; the tracer itself is handed to
 * each decorator, never looked up.
 */
import { context, propagation, trace, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { assertNever } from "../base/assert-never.js";
import type { SamplerSetting, TracingSettings } from "./settings.js";

/** The name the gateway's spans are recorded under (the instrumentation scope). */
export const TRACER_NAME = "worker-session-gateway";

export interface Tracing {
  readonly tracer: Tracer;
  /** Sends the spans still buffered and stops exporting. */
  shutdown(): Promise<void>;
}

function samplerFor(setting: SamplerSetting): Sampler {
  switch (setting.name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(setting.ratio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(setting.ratio) });
    default:
      return assertNever(setting.name);
  }
}

/**
 * Starts exporting spans as `settings` say and registers the context manager and the W3C
 * propagator. `processor` replaces the OTLP exporter (tests, the benchmark's sink).
 */
export function startTracing(settings: Extract<TracingSettings, { enabled: true }>, processor?: SpanProcessor): Tracing {
  // OTEL_RESOURCE_ATTRIBUTES is honoured; service.name comes from OTEL_SERVICE_NAME (or our default).
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ "service.name": settings.serviceName }));
  // OTEL_EXPORTER_OTLP(_TRACES)_HEADERS, _TIMEOUT and _COMPRESSION are read by the exporter itself.
  const spanProcessor = processor ?? new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl }));
  const provider = new NodeTracerProvider({ resource, sampler: samplerFor(settings.sampler), spanProcessors: [spanProcessor] });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return {
    tracer: provider.getTracer(TRACER_NAME),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
