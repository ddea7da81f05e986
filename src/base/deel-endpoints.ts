/**
 * The Deel endpoints the gateway calls, named once. The client uses them in its error messages,
 * the resilience layer in its events, and the metrics as the `endpoint` label: one list, so a new
 * endpoint cannot be counted under a name the rest of the code does not know. It lives in base/
 * because both deel/ (which calls Deel) and http/ (which labels the metrics) read it.
 */
export const DEEL_ENDPOINTS = {
  createSession: "POST /workers/session",
  revokeSession: "DELETE /workers/{profile_id}/session",
  createMagicLink: "POST /magic-link",
} as const;

/** One Deel endpoint, as method and path template (a profile id never appears in it). */
export type DeelEndpoint = (typeof DEEL_ENDPOINTS)[keyof typeof DEEL_ENDPOINTS];
