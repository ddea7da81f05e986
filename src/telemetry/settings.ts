/**
 * What the tracing layer is told at start-up (config.tracing), parsed from the standard `OTEL_*`
 * variables by the wiring (src/tracing-config.ts). Off unless an OTLP endpoint or
 * `OTEL_TRACES_EXPORTER=otlp` is set; `OTEL_SDK_DISABLED=true` wins over both.
 */
export type TracingSettings =
  | { readonly enabled: false }
  | {
      readonly enabled: true;
      /** Where spans are POSTed as OTLP/HTTP JSON, e.g. `http://collector:4318/v1/traces`. */
      readonly tracesUrl: string;
      /** `service.name` of every span (`OTEL_SERVICE_NAME`). */
      readonly serviceName: string;
      readonly sampler: SamplerSetting;
    };

/** `OTEL_TRACES_SAMPLER` and its `OTEL_TRACES_SAMPLER_ARG`, as the specification names them. */
export interface SamplerSetting {
  readonly name: SamplerName;
  /** The ratio of the `*traceidratio` samplers, 0 to 1. */
  readonly ratio: number;
}

export const SAMPLER_NAMES = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];
