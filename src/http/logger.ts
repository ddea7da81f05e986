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
];

/** The process logger: JSON lines at `level`, to stdout unless a destination is given (tests). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "worker-session-gateway" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
