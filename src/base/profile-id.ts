/**
 * Deel worker profile ids are HRIS profile UUIDs. A `ProfileId` is one that has been checked and
 * put in its one spelling (lower case) where it entered the gateway: the GraphQL edge for a caller's
 * input and a federation key, the verifier for a caller's profile claim. Code below takes the type,
 * not a string, so nothing there checks or lower-cases again, and no URL is ever built from an id
 * that was not checked (a caller-supplied `../`, `?` or `%2f` never steers a request path).
 */
import { accepted, refused, type Checked } from "./checked.js";

declare const profileIdBrand: unique symbol;

/** A worker profile UUID in lower case. Made only by {@link parseProfileId} (or read back from the ledger). */
export type ProfileId = string & { readonly [profileIdBrand]: "ProfileId" };

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * True when `value` has the RFC 4122 textual shape (8-4-4-4-12 hex digits), any version or variant,
 * case-insensitive. Nothing else is accepted: no braces, no `urn:uuid:` prefix, no surrounding spaces.
 */
export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID_PATTERN.test(value);
}

/** The rule a profile id is held to, in the words a caller is answered with (README: Errors). */
export const PROFILE_ID_RULE = "profileId must be a UUID";

/**
 * A profile id as the gateway keeps it: a UUID (any letter case accepted) in lower case, so that
 * `6F1E…` and `6f1e…` are one worker everywhere (ledger, per-profile ordering, callers' claims,
 * idempotency keys, Deel paths).
 */
export function parseProfileId(value: unknown): Checked<ProfileId> {
  return isUuid(value) ? accepted(value.toLowerCase() as ProfileId) : refused(PROFILE_ID_RULE);
}

/**
 * A profile id read back from the gateway's own ledger or job store, whose keys were written only
 * from `ProfileId`s: trusted as it is, not checked again.
 */
export function storedProfileId(key: string): ProfileId {
  return key as ProfileId;
}
