import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A second, independent server that follows Deel's published worker-session API (and White Label's `POST /magic-link`)
 * and nothing more, under another base path:
 * the gateway must work against any such server, not only the built-in sandbox.
 */
export interface MinimalDeel {
  url: string;
  token: string;
  profiles: string[];
  calls: Array<{ method: string; path: string; idempotencyKey: string | undefined }>;
  /** Each accepted `POST /magic-link`: the worker token that authorized it, and the body's redirect_path. */
  magicLinks: Array<{ workerToken: string; redirectPath: string }>;
  /** Whether the profile holds a live worker token here. */
  isLive(profileId: string): boolean;
  /** The next create mints its token but never answers (a lost answer). */
  loseNextAnswer(): void;
  close(): Promise<void>;
}

export async function startMinimalDeel(profileCount = 2): Promise<MinimalDeel> {
  const token = `org-${randomBytes(16).toString("hex")}`;
  const profiles: string[] = Array.from({ length: profileCount }, () => randomUUID());
  let loseNext = false;
  const unanswered = new Set<ServerResponse>();
  const calls: MinimalDeel["calls"] = [];
  const magicLinks: MinimalDeel["magicLinks"] = [];
  /** Profile → its live worker token (one per worker; a revoke or a new mint ends the old one). */
  const live = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const key = req.headers["idempotency-key"];
    calls.push({ method: req.method ?? "", path: req.url ?? "", idempotencyKey: typeof key === "string" ? key : undefined });
    const fail = (status: number) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: String(status), message: "refused" } }));
    };
    if (req.method === "POST" && req.url === "/deel/api/v2/magic-link") {
      // White Label sign-in: authorized by a live worker token; 401 is `{"error":"…"}` here.
      const workerToken = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      req.on("end", () => {
        if (workerToken === undefined || ![...live.values()].includes(workerToken)) {
          res.writeHead(401, { "content-type": "application/json" });
          return res.end(JSON.stringify({ error: "Unauthorized" }));
        }
        const redirectPath = (JSON.parse(body) as { data?: { redirect_path?: string } }).data?.redirect_path;
        if (typeof redirectPath !== "string" || !redirectPath.startsWith("/")) return fail(400);
        magicLinks.push({ workerToken, redirectPath });
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ data: { magic_link: `https://minimal.deel.test/ml/${randomBytes(12).toString("hex")}`, expires_at: new Date(Date.now() + 600_000).toISOString() } }));
      });
      return;
    }
    if (req.headers.authorization !== `Bearer ${token}`) return fail(401);
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    req.on("end", () => {
      const revoke = /^\/deel\/api\/v2\/workers\/([^/]+)\/session$/.exec(req.url ?? "");
      if (req.method === "POST" && req.url === "/deel/api/v2/workers/session") {
        const id = (JSON.parse(body) as { data?: { profile_id?: string } }).data?.profile_id;
        if (id === undefined || !profiles.includes(id)) return fail(404);
        const workerToken = randomBytes(24).toString("base64url");
        live.set(id, workerToken);
        if (loseNext) {
          loseNext = false;
          unanswered.add(res);
          return;
        }
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ data: { token: workerToken, expires_at: new Date(Date.now() + 86_400_000).toISOString() } }));
      } else if (req.method === "DELETE" && revoke) {
        if (!profiles.includes(revoke[1] as string)) return fail(404);
        live.delete(revoke[1] as string);
        res.writeHead(204).end();
      } else fail(404);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/deel/api/v2`,
    token,
    profiles,
    calls,
    magicLinks,
    isLive: (profileId) => live.has(profileId),
    loseNextAnswer: () => {
      loseNext = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of unanswered) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
