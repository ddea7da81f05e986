/**
 * A caller's `idempotencyKey` (README: Idempotency), checked once where it enters the gateway. It
 * is never sent to Deel as it is: the Deel layer derives the header value from it (caller, profile,
 * key), so any string of the right length is fine.
 */
import { accepted, refused, type Checked } from "./checked.js";

declare const idempotencyKeyBrand: unique symbol;

/** A caller's idempotency key: 1 to 64 characters. Made only by {@link parseIdempotencyKey}. */
export type IdempotencyKey = string & { readonly [idempotencyKeyBrand]: "IdempotencyKey" };

/** The longest caller key (and Deel's limit on `Idempotency-Key`). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 64;

/**
 * A caller key of 1 to 64 characters. The empty string is refused, not read as "no key": a caller
 * that means none leaves the field out (or sends null).
 */
export function parseIdempotencyKey(value: unknown): Checked<IdempotencyKey> {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_IDEMPOTENCY_KEY_LENGTH
    ? accepted(value as IdempotencyKey)
    : refused(`idempotencyKey must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
}
