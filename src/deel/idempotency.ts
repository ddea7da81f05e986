/**
 * Idempotency keys sent to Deel on `POST /workers/session`.
 *
 * Deel scopes a key to the whole organization, and every caller of this gateway shares the
 * one organization token. A caller's key is therefore never forwarded raw: two callers choosing the
 * same key (or one caller reusing a key for another profile) would otherwise be handed each other's
 * token by Deel's replay. The derived key is namespaced by caller (`sub`) and profile.
 */
import { createHash, randomUUID } from "node:crypto";
import type { IdempotencyKey } from "../base/idempotency-key.js";
import type { ProfileId } from "../base/profile-id.js";

/** Version prefix, so that a future derivation can never collide with this one. */
const PREFIX = "wsg1-";

/**
 * The `Idempotency-Key` to send to Deel for one mint.
 *
 * - With a caller key: `wsg1-` + base64url(sha256(JSON.stringify([sub, profileId, callerKey]))), 48
 *   characters, deterministic, different for every (sub, profile, key). The profile id is a
 *   `ProfileId`, already in its one (lower-case) spelling: the same profile is one key.
 * - Without one: a fresh `randomUUID()`, so that a retry of *this* call is still safe but no later
 *   call ever replays it.
 *
 * Both inputs were checked at the edge (an empty or too long caller key never gets here).
 */
export function deriveIdempotencyKey(sub: string, profileId: ProfileId, callerKey: IdempotencyKey | undefined): string {
  if (callerKey === undefined) return randomUUID();
  const digest = createHash("sha256").update(JSON.stringify([sub, profileId, callerKey]), "utf8").digest("base64url");
  return PREFIX + digest;
}
