import { createHash, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Router-only mode (`ROUTER_SECRET`): every GraphQL request must carry the secret in
 * `Router-Authorization`, so that only the supergraph router can reach this subgraph. Compared in
 * constant time (over fixed-length digests, so the length does not leak either).
 */
export function requireRouterSecret(secret: string) {
  const expected = digest(secret);
  return (req: Request, res: Response, next: NextFunction) => {
    const given = req.headers["router-authorization"];
    if (typeof given === "string" && timingSafeEqual(digest(given), expected)) return next();
    req.log.warn("refused a request without the router secret");
    res.status(401).json({
      errors: [{ message: "This subgraph only answers the supergraph router", extensions: { code: "UNAUTHENTICATED" } }],
    });
  };
}
