import pino, { type DestinationStream, type Logger, type LogFn } from "pino";
import { systemBackgroundClock, type BackgroundClock } from "../base/clock.js";
import { LogLineBudget, type LogBudgetSettings } from "./log-budget.js";
import { boundForLog, boundMessage } from "./log-bounds.js";

export type { LogBudgetSettings } from "./log-budget.js";

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

/** No budget: every line is written (a test's logger, unless it asks for one). */
const UNLIMITED: LogBudgetSettings = { errorLinesPerSecond: 0, droppedSummaryMs: 10_000 };

export interface LoggerOptions {
  /** The per-process budget of warn and error lines (README: Errors). Default: none. */
  budget?: LogBudgetSettings;
  /** Reads the budget's window and times its summaries. Default: the real clock. */
  clock?: BackgroundClock;
}

/** pino's numeric levels. */
const WARN = 40;
const FATAL = 60;

/**
 * A log call's arguments with its message bounded. pino takes an error's message as the line's
 * message when none is given; that message is the error's own, so it is bounded here too.
 */
function boundArguments(args: unknown[]): unknown[] {
  const [first, ...rest] = args;
  if (first instanceof Error) return [{ err: first }, boundMessage(typeof rest[0] === "string" ? rest[0] : first.message), ...rest.slice(1)];
  if (typeof first === "string") return [boundMessage(first), ...rest];
  if (typeof rest[0] === "string") return [first, boundMessage(rest[0]), ...rest.slice(1)];
  const err = first !== null && typeof first === "object" ? (first as { err?: unknown }).err : undefined;
  if (rest.length === 0 && err instanceof Error) return [first, boundMessage(err.message)];
  return args;
}

/**
 * The process logger: JSON lines at `level`, to stdout unless a destination is given (tests).
 * Every line is bounded (`LOG_BOUNDS`: strings, stacks, arrays, nesting and the whole line), so
 * that text a caller chose cannot make a line large; and, with a budget, warn and error lines are
 * admitted at most `errorLinesPerSecond` a second per process, the rest dropped and counted in a
 * periodic "log lines dropped" warn line. Fatal lines and lines below warn (audit lines among
 * them) are never dropped.
 */
export function createLogger(level: string, destination?: DestinationStream, options: LoggerOptions = {}): Logger {
  let summarizing = false;
  const budget = new LogLineBudget(options.budget ?? UNLIMITED, options.clock ?? systemBackgroundClock, (dropped, sinceMs) => {
    summarizing = true;
    try {
      logger.warn({ droppedLines: dropped, sinceMs }, `log lines dropped: ${dropped} warn and error lines over the per-process budget`);
    } finally {
      summarizing = false;
    }
  });
  const logger: Logger = pino(
    {
      level,
      base: { service: "worker-session-gateway" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (fields) => boundForLog(fields, serializeError),
      },
      hooks: {
        logMethod(args, method, numeric) {
          if (numeric >= WARN && numeric < FATAL && !summarizing && !budget.admit()) return;
          method.apply(this, boundArguments(args) as Parameters<LogFn>);
        },
      },
    },
    destination,
  );
  return logger;
}
