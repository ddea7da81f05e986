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
