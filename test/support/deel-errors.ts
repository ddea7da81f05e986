import { inspect } from "node:util";
import { expect } from "vitest";
import { DeelError } from "../../src/deel/errors.js";

/** Awaits a call that must fail with a DeelError, and returns that error. */
export async function deelFailure(promise: Promise<unknown>): Promise<DeelError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DeelError);
    return error as DeelError;
  }
  throw new Error("expected the call to fail with a DeelError");
}

/**
 * Everything an error could show when logged or serialized (inspect, JSON, stack, its cause), so a
 * test can assert that no token appears anywhere in it.
 */
export function serialize(error: unknown): string {
  const parts = [inspect(error, { depth: 10, showHidden: true })];
  if (error instanceof Error) {
    parts.push(JSON.stringify(error, Object.getOwnPropertyNames(error)), JSON.stringify({ ...error }), String(error.stack));
    const cause = error.cause;
    if (cause instanceof Error) parts.push(cause.message, String(cause.stack), JSON.stringify(cause, Object.getOwnPropertyNames(cause)));
  }
  return parts.join("\n");
}
