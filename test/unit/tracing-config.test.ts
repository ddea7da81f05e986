import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

/** The operator's environment for a local-mode gateway, plus `env`. */
const configWith = (env: Record<string, string>) => loadConfig({ SESSION_STORE_URL: "memory:", ...env });

describe("tracing settings from the OTEL_* variables", () => {
  it("is off by default, and ftv1 with it", () => {
    const config = configWith({});
    expect(config.tracing).toEqual({ enabled: false });
    expect(config.apolloFederatedTracing).toBe(false);
  });

  it("turns on with OTEL_EXPORTER_OTLP_ENDPOINT and posts to its /v1/traces", () => {
    expect(configWith({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).tracing).toEqual({
      enabled: true,
      tracesUrl: "http://collector:4318/v1/traces",
      serviceName: "worker-session-gateway",
      sampler: { name: "parentbased_always_on", ratio: 1 },
    });
  });

  it("uses OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, before the general endpoint", () => {
    const tracing = configWith({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://otel.example.com/ingest", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }).tracing;
    expect(tracing).toMatchObject({ enabled: true, tracesUrl: "https://otel.example.com/ingest" });
  });

  it("turns on with OTEL_TRACES_EXPORTER=otlp alone, toward the specification's default endpoint", () => {
    expect(configWith({ OTEL_TRACES_EXPORTER: "otlp" }).tracing).toMatchObject({ enabled: true, tracesUrl: "http://localhost:4318/v1/traces" });
  });

  it("stays off when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, whatever the endpoint", () => {
    expect(configWith({ OTEL_SDK_DISABLED: "TRUE", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }).tracing).toEqual({ enabled: false });
    expect(configWith({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }).tracing).toEqual({ enabled: false });
  });

  it("reads the service name and the sampler with its ratio", () => {
    const tracing = configWith({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_SERVICE_NAME: "wsg-eu",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
    }).tracing;
    expect(tracing).toMatchObject({ serviceName: "wsg-eu", sampler: { name: "parentbased_traceidratio", ratio: 0.25 } });
  });

  it.each([
    [{ OTEL_TRACES_SAMPLER: "sometimes" }, /OTEL_TRACES_SAMPLER must be one of always_on, .*"sometimes"/],
    [{ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1.5" }, /OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1/],
    [{ OTEL_TRACES_EXPORTER: "zipkin" }, /OTEL_TRACES_EXPORTER must be otlp or none/],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }, /OTEL_EXPORTER_OTLP_PROTOCOL must be http\/json/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, /OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/],
    [{ APOLLO_FEDERATED_TRACING: "yes" }, /APOLLO_FEDERATED_TRACING must be 1 or 0/],
  ])("refuses %o at start-up, naming the variable", (env, message) => {
    expect(() => configWith({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", ...env })).toThrow(ConfigError);
    expect(() => configWith({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", ...env })).toThrow(message);
  });

  it("turns ftv1 on with APOLLO_FEDERATED_TRACING", () => {
    expect(configWith({ APOLLO_FEDERATED_TRACING: "true" }).apolloFederatedTracing).toBe(true);
  });
});
