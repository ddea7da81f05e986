import pino, { type DestinationStream, type Logger } from "pino";

/**
 * Paths pino censors in every line. Tokens also stay out by construction (the token is never
 * passed to a logger), so this is the second fence: any header bag or any `token` field logged by
 * mistake is censored.
 */
export const REDACT_PATHS = [
  "token",
  "*.token",
  "*.*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
  "*.headers['router-authorization']",
  "headers['router-authorization']",
  "req.headers.authorization",
  "req.headers.cookie",
  // ioredis puts the failed command on its errors; for AUTH/HELLO that holds the password.
  "err.command",
  "err.cause.command",
  "*.err.command",
];

/** Drops `command` (ioredis: the failed command, AUTH password included) through the cause chain. */
function scrub(serialized: Record<string, unknown>): Record<string, unknown> {
  delete serialized.command;
  const cause = serialized.cause;
  if (cause !== null && typeof cause === "object") scrub(cause as Record<string, unknown>);
  return serialized;
}

/** pino's error serializer, minus anything a client library attached that may hold a secret. */
export function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  return scrub(pino.stdSerializers.err(error));
}

/** The process logger: JSON lines at `level`, to stdout unless a destination is given (tests). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "worker-session-gateway" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
