/** Exhaustiveness check for `switch` over a union: unreachable when every case is handled. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`);
}
