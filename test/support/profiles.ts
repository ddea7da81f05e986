import { parseProfileId, type ProfileId } from "../../src/base/profile-id.js";
import { parseIdempotencyKey, type IdempotencyKey } from "../../src/base/idempotency-key.js";

/** A test's profile id, made as the edge makes one (throws for a value the edge would refuse). */
export function aProfileId(raw: string): ProfileId {
  const parsed = parseProfileId(raw);
  if (!parsed.ok) throw new Error(`${raw} is not a profile id: ${parsed.problem}`);
  return parsed.value;
}

/** A test's caller idempotency key, made as the edge makes one. */
export function anIdempotencyKey(raw: string): IdempotencyKey {
  const parsed = parseIdempotencyKey(raw);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value;
}
