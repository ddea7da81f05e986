/**
 * Deel worker profile ids are HRIS profile UUIDs. Validating the shape before a URL is
 * built is what keeps a caller-supplied id from ever steering a request path (`../`, `?`, `%2f`…).
 */

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * True when `value` has the RFC 4122 textual shape (8-4-4-4-12 hex digits), any version or variant,
 * case-insensitive. Nothing else is accepted: no braces, no `urn:uuid:` prefix, no surrounding spaces.
 */
export function isUuid(value: string): boolean {
  return typeof value === "string" && UUID_PATTERN.test(value);
}

/**
 * The ledger's key for a worker profile. Profile ids are UUIDs, which compare case-insensitively;
 * the ledger, the per-profile ordering and the callers' profile claims all use the lower-case form,
 * so `6F1E…` and `6f1e…` are one worker everywhere.
 */
export function profileKey(profileId: string): string {
  return profileId.toLowerCase();
}
