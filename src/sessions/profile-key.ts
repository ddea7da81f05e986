/**
 * The ledger's key for a worker profile. Profile ids are UUIDs, which compare case-insensitively;
 * the ledger, the per-profile ordering and the callers' profile claims all use the lower-case form,
 * so `6F1E…` and `6f1e…` are one worker everywhere.
 */
export function profileKey(profileId: string): string {
  return profileId.toLowerCase();
}
