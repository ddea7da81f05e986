/**
 * Tracing settings from the standard OpenTelemetry variables (README: Tracing), parsed once at
 * start-up like the rest of the config; a value the gateway cannot honour stops it with a message
 * naming the variable.
 *
 * On when `OTEL_TRACES_EXPORTER=otlp`, or when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_TRACES_EXPORTER` is not `none`). Off whenever
 * `OTEL_SDK_DISABLED=true`. Spans go as OTLP/HTTP JSON.
 */
import { ConfigError, flag, httpUrl, read, type Env } from "./config-readers.js";
import { SAMPLER_NAMES, type SamplerName, type TracingSettings } from "./telemetry/settings.js";

export type { TracingSettings } from "./telemetry/settings.js";

/** The service name spans carry when OTEL_SERVICE_NAME is unset. */
export const DEFAULT_SERVICE_NAME = "worker-session-gateway";
/** The OTLP/HTTP endpoint the specification defaults to. */
const DEFAULT_ENDPOINT = "http://localhost:4318";

/** `OTEL_SDK_DISABLED` is `true` (any case) or not; the specification reads only that value. */
function sdkDisabled(env: Env): boolean {
  return read(env, "OTEL_SDK_DISABLED")?.toLowerCase() === "true";
}

function ratio(env: Env, sampler: SamplerName): number {
  const raw = read(env, "OTEL_TRACES_SAMPLER_ARG");
  if (raw === undefined || !sampler.endsWith("traceidratio")) return 1;
  const value = Number(raw);
  if (!/^\d*\.?\d+$/.test(raw) || !(value >= 0 && value <= 1)) {
    throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1 for ${sampler}, but got "${raw.slice(0, 40)}"`);
  }
  return value;
}

/** Parses the OTEL_* variables the gateway honours (see the module comment). */
export function readTracingSettings(env: Env): TracingSettings {
  if (sdkDisabled(env)) return { enabled: false };
  const exporter = read(env, "OTEL_TRACES_EXPORTER")?.toLowerCase();
  if (exporter !== undefined && exporter !== "otlp" && exporter !== "none") {
    throw new ConfigError(`OTEL_TRACES_EXPORTER must be otlp or none (the gateway exports OTLP/HTTP only), but got "${exporter.slice(0, 40)}"`);
  }
  const tracesEndpoint = httpUrl(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const endpoint = httpUrl(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
  if (exporter === "none" || (exporter === undefined && tracesEndpoint === undefined && endpoint === undefined)) return { enabled: false };

  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const protocol = read(env, name);
    if (protocol !== undefined && protocol !== "http/json") {
      throw new ConfigError(`${name} must be http/json (the gateway sends OTLP/HTTP JSON, which every OpenTelemetry Collector accepts on :4318), but got "${protocol.slice(0, 40)}"`);
    }
  }
  const samplerRaw = (read(env, "OTEL_TRACES_SAMPLER") ?? "parentbased_always_on").toLowerCase();
  const sampler = SAMPLER_NAMES.find((name) => name === samplerRaw);
  if (sampler === undefined) {
    throw new ConfigError(`OTEL_TRACES_SAMPLER must be one of ${SAMPLER_NAMES.join(", ")}, but got "${samplerRaw.slice(0, 40)}"`);
  }
  // The signal-specific endpoint is used as it is; the general one gets the traces path appended.
  const tracesUrl = tracesEndpoint ?? `${(endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, "")}/v1/traces`;
  return {
    enabled: true,
    tracesUrl,
    serviceName: read(env, "OTEL_SERVICE_NAME") ?? DEFAULT_SERVICE_NAME,
    sampler: { name: sampler, ratio: ratio(env, sampler) },
  };
}

/** `APOLLO_FEDERATED_TRACING`: Apollo's inline trace (ftv1) for a router that asks for it. Off by default. */
export function readFederatedTracing(env: Env): boolean {
  return flag(env, "APOLLO_FEDERATED_TRACING");
}
