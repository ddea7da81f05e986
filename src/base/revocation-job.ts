/**
 * What a revocation job (the kill switch) is asked for, checked once where it enters the gateway:
 * its filters, and the id a caller polls it by.
 */
import { accepted, refused, type Checked } from "./checked.js";
import { isUuid, parseProfileId, type ProfileId } from "./profile-id.js";

declare const jobIdBrand: unique symbol;
declare const filtersBrand: unique symbol;

/** A revocation job's id: a UUID in lower case (as the runner makes them). */
export type RevocationJobId = string & { readonly [jobIdBrand]: "RevocationJobId" };

/** Which sessions a job revokes: at least one of `createdBy` and `profileIds`; ids unique. */
export type RevocationJobFilters = {
  readonly createdBy: string | null;
  readonly profileIds: readonly ProfileId[] | null;
  readonly onlyActive: boolean;
} & { readonly [filtersBrand]: "RevocationJobFilters" };

/**
 * The request id a job's revokes are logged and recorded with is this prefix and the job's id
 * (`revocation-job:<id>`). A client's `x-request-id` that starts with it, in any letter case, is
 * replaced with a fresh one, so that no request can pass for a job's revoke in the audit lines or
 * the session history.
 */
export const JOB_REQUEST_ID_PREFIX = "revocation-job:";

/** Most profile ids one revocation job may name: 2,000 UUIDs fit the 100 kB request body limit. */
export const MAX_REVOCATION_PROFILE_IDS = 2_000;
/** Longest `createdBy` filter (a caller's `sub` is at most this long). */
export const MAX_CREATED_BY = 256;

export function parseRevocationJobId(value: unknown): Checked<RevocationJobId> {
  return isUuid(value) ? accepted(value.toLowerCase() as RevocationJobId) : refused("id must be a revocation job id (a UUID)");
}

/**
 * A job's filters: a `createdBy` of 1 to 256 characters, or a non-empty `profileIds` (at most
 * 2,000, all UUIDs), or both; `onlyActive` defaults to true. Profile ids are lower-cased and
 * de-duplicated; an empty list beside `createdBy` stays an empty list.
 */
export function parseRevocationJobFilters(input: { createdBy?: unknown; profileIds?: unknown; onlyActive?: unknown } | undefined): Checked<RevocationJobFilters> {
  const createdBy = input?.createdBy ?? null;
  const rawIds = input?.profileIds ?? null;
  if (createdBy !== null && (typeof createdBy !== "string" || createdBy.length === 0 || createdBy.length > MAX_CREATED_BY)) {
    return refused(`createdBy must be 1 to ${MAX_CREATED_BY} characters`);
  }
  const hasProfileIds = Array.isArray(rawIds) && rawIds.length > 0;
  if (createdBy === null && !hasProfileIds) return refused("Give at least one filter: createdBy, or a non-empty profileIds");
  let profileIds: ProfileId[] | null = null;
  if (rawIds !== null) {
    if (!Array.isArray(rawIds)) return refused("profileIds must all be UUIDs");
    if (rawIds.length > MAX_REVOCATION_PROFILE_IDS) return refused(`profileIds may name at most ${MAX_REVOCATION_PROFILE_IDS} profiles`);
    const unique = new Set<ProfileId>();
    for (const raw of rawIds) {
      const parsed = parseProfileId(raw);
      if (!parsed.ok) return refused("profileIds must all be UUIDs");
      unique.add(parsed.value);
    }
    profileIds = [...unique];
  }
  const onlyActive = typeof input?.onlyActive === "boolean" ? input.onlyActive : true;
  return accepted({ createdBy, profileIds, onlyActive } as RevocationJobFilters);
}
