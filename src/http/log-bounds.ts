/**
 * How much one log line may hold. A line's fields can carry text a caller chose: an error's
 * message (graphql-js and Apollo's subgraph resolver quote the caller's input), its stack (whose
 * first line repeats the message), a path of aliases, a type name. Without a bound, one 97 kB
 * request writes its text twice, and a flood of them writes hundreds of megabytes.
 */
export const LOG_BOUNDS = {
  /** Characters kept of one string (a message, an alias, a type name). */
  string: 512,
  /** Lines kept of a stack: the `Name: message` line (itself bounded) and the frames after it. */
  stackLines: 12,
  /** Items kept of an array. */
  arrayItems: 10,
  /** Keys kept of an object. */
  objectKeys: 30,
  /** Nesting kept (an error's cause's cause …); deeper values become a marker. */
  depth: 6,
  /** Characters of strings and keys in the whole line together; past it, values become a marker. */
  total: 4096,
} as const;

interface Budget {
  left: number;
}

const DEPTH_MARKER = "[too deep]";
const SPENT_MARKER = "[truncated]";

function boundString(text: string, budget: Budget, limit: number = LOG_BOUNDS.string): string {
  if (budget.left <= 0) return SPENT_MARKER;
  const keep = Math.min(text.length, limit, budget.left);
  budget.left -= keep;
  return keep === text.length ? text : `${text.slice(0, keep)}…[${text.length - keep} more characters]`;
}

/** A stack: its header (which repeats the message) bounded like any string, then the first frames. */
function boundStack(stack: string, budget: Budget): string {
  const lines = stack.split("\n");
  const kept = lines.slice(0, LOG_BOUNDS.stackLines).map((line) => boundString(line, budget, LOG_BOUNDS.string / 2));
  if (lines.length > LOG_BOUNDS.stackLines) kept.push(`    …[${lines.length - LOG_BOUNDS.stackLines} more lines]`);
  return kept.join("\n");
}

function bound(value: unknown, depth: number, budget: Budget, serializeError: (error: Error) => unknown): unknown {
  switch (typeof value) {
    case "string":
      return boundString(value, budget);
    case "number":
    case "boolean":
    case "undefined":
      return value;
    case "bigint":
      return boundString(value.toString(), budget);
    case "symbol":
    case "function":
      return undefined;
    default:
      break;
  }
  if (value === null) return null;
  if (depth >= LOG_BOUNDS.depth) return DEPTH_MARKER;
  if (value instanceof Error) return bound(serializeError(value), depth, budget, serializeError);
  if (value instanceof Date) return value;
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (Array.isArray(value)) {
    const items = value.slice(0, LOG_BOUNDS.arrayItems).map((item) => bound(item, depth + 1, budget, serializeError));
    if (value.length > LOG_BOUNDS.arrayItems) items.push(`[${value.length - LOG_BOUNDS.arrayItems} more items]`);
    return items;
  }
  const source = value as Record<string, unknown>;
  // A URL, a GraphQL AST node with a JSON form …: bounded as that form, as JSON.stringify would write it.
  if (typeof source.toJSON === "function") return bound((source.toJSON as () => unknown)(), depth + 1, budget, serializeError);
  const result: Record<string, unknown> = {};
  let keys = 0;
  for (const key in source) {
    if (!Object.hasOwn(source, key)) continue;
    if (keys === LOG_BOUNDS.objectKeys || budget.left <= 0) {
      result["[more keys]"] = true;
      break;
    }
    keys += 1;
    budget.left -= Math.min(key.length, budget.left);
    const field = source[key];
    result[key.length > LOG_BOUNDS.string ? key.slice(0, LOG_BOUNDS.string) : key] =
      key === "stack" && typeof field === "string" ? boundStack(field, budget) : bound(field, depth + 1, budget, serializeError);
  }
  return result;
}

/**
 * A copy of a log line's fields that fits {@link LOG_BOUNDS}: strings cut (with how much was cut),
 * stacks cut to their first frames, arrays and objects to their first entries, nesting to a
 * depth, and all of it to one budget of characters. Errors anywhere in it are serialized with
 * `serializeError` first, so a cause or an error in an array is bounded like the rest.
 */
export function boundForLog(fields: Record<string, unknown>, serializeError: (error: Error) => unknown): Record<string, unknown> {
  return bound(fields, 0, { left: LOG_BOUNDS.total }, serializeError) as Record<string, unknown>;
}

/** A log message, cut to one string's bound. */
export function boundMessage(message: string): string {
  return boundString(message, { left: LOG_BOUNDS.string });
}
