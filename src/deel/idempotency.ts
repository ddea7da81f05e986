/**
 * Idempotency keys sent to Deel on `POST /workers/session`.
 *
 * Deel scopes a key to the whole organization, and every caller of this gateway shares the
 * one organization token. A caller's key is therefore never forwarded raw: two callers choosing the
 * same key (or one caller reusing a key for another profile) would otherwise be handed each other's
 * token by Deel's replay. The derived key is namespaced by caller (`sub`) and profile.
 */
import { createHash, randomUUID } from "node:crypto";
import { DeelError } from "./errors.js";

/** Deel's limit on `Idempotency-Key`, and ours on a caller-supplied key (the contract's `idempotencyKey`). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 64;

/** Version prefix, so that a future derivation can never collide with this one. */
const PREFIX = "wsg1-";

/**
 * The `Idempotency-Key` to send to Deel for one mint.
 *
 * - With a caller key: `wsg1-` + base64url(sha256(JSON.stringify([sub, profileId, callerKey]))), 48
 *   characters, deterministic, different for every (sub, profile, key). The profile id is lowercased
 *   first because Deel treats UUIDs case-insensitively: the same profile spelt twice is one profile.
 * - Without one (`undefined` or `""`, which a form most likely sent meaning "none"): a fresh
 *   `randomUUID()`, so that a retry of *this* call is still safe but no later call ever replays it.
 *
 * Throws `DeelError('invalid_input')` for a caller key over 64 characters (answered as BAD_USER_INPUT).
 */
export function deriveIdempotencyKey(sub: string, profileId: string, callerKey: string | undefined): string {
  if (callerKey === undefined || callerKey === "") return randomUUID();
  if (callerKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new DeelError("invalid_input", `idempotencyKey must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  }
  const digest = createHash("sha256").update(JSON.stringify([sub, profileId.toLowerCase(), callerKey]), "utf8").digest("base64url");
  return PREFIX + digest;
}
