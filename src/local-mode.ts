import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import type { Config } from "./config.js";
import { Scope } from "./auth/caller.js";
import { startDeelSandbox, type DeelSandbox } from "./deel/sandbox/server.js";

export interface LocalMode {
  sandbox: DeelSandbox;
  /** A caller token with every scope and all profiles, valid for 12 hours. */
  adminToken: string;
  /** A caller token limited to the first seeded profile (read, create, revoke). */
  workerToken: string;
}

/**
 * Local mode (SPEC §5): with no Deel token outside production, start the built-in Deel sandbox on
 * loopback, a dev signing secret, and sign ready-to-paste caller tokens. Mutates `config` so the
 * rest of the gateway runs exactly as it would against Deel.
 */
export async function startLocalMode(config: Config, env: Record<string, string | undefined> = process.env): Promise<LocalMode> {
  const port = env.DEEL_SANDBOX_PORT === undefined ? 0 : Number(env.DEEL_SANDBOX_PORT);
  const sandbox = await startDeelSandbox({ port });
  config.deel.apiUrl = sandbox.url;
  config.deel.token = sandbox.orgToken;
  if (config.auth.jwksUrl === undefined && config.auth.jwtSecret === undefined) {
    config.auth.jwtSecret = randomBytes(32).toString("hex");
  }
  let adminToken = "";
  let workerToken = "";
  if (config.auth.jwtSecret !== undefined) {
    const key = new TextEncoder().encode(config.auth.jwtSecret);
    const sign = (sub: string, claims: Record<string, unknown>) => {
      const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt().setExpirationTime("12h");
      if (config.auth.issuer !== undefined) jwt.setIssuer(config.auth.issuer);
      if (config.auth.audience !== undefined) jwt.setAudience(config.auth.audience);
      return jwt.sign(key);
    };
    adminToken = await sign("local-admin", { scope: Object.values(Scope).join(" ") });
    const first = sandbox.profiles[0];
    workerToken = await sign(`local-worker-${first}`, {
      scope: [Scope.read, Scope.create, Scope.revoke].join(" "),
      [config.auth.profileClaim]: [first],
    });
  }
  return { sandbox, adminToken, workerToken };
}

/** The banner `npm start` prints in local mode. */
export function localBanner(graphqlUrl: string, local: LocalMode): string {
  const lines = [
    "",
    "Worker Session Gateway — local mode (built-in Deel sandbox, nothing leaves this machine)",
    "",
    `  GraphQL + Apollo Sandbox:  ${graphqlUrl}`,
    `  Deel sandbox:              ${local.sandbox.url}`,
    "",
    "  Seeded worker profile ids:",
    ...local.sandbox.profiles.map((id) => `    ${id}`),
    "",
  ];
  if (local.adminToken !== "") {
    lines.push(
      "  Admin caller (every scope, all profiles), paste as the Authorization header:",
      `    Bearer ${local.adminToken}`,
      "",
      `  Worker caller (only ${local.sandbox.profiles[0]}):`,
      `    Bearer ${local.workerToken}`,
      "",
    );
  } else {
    lines.push("  Callers are verified against AUTH_JWKS_URL; bring your own tokens.", "");
  }
  return lines.join("\n");
}
