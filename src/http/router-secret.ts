import { createHash, timingSafeEqual } from "node:crypto";

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Router-only mode (`ROUTER_SECRET`): every GraphQL request must carry the secret in
 * `Router-Authorization`, so that only the supergraph router can reach this subgraph. Returns the
 * check. It compares in constant time, over fixed-length digests so the length does not leak either.
 */
export function routerSecretCheck(secret: string): (given: string | string[] | undefined) => boolean {
  const expected = digest(secret);
  return (given) => typeof given === "string" && timingSafeEqual(digest(given), expected);
}
