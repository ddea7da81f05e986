import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import type { Config } from "./config.js";
import { Scope } from "./auth/caller.js";
import { startDeelSandbox, type DeelSandbox } from "./deel/sandbox/server.js";

export interface LocalMode {
  /** The operator's config with the sandbox's URL and token, and a dev signing secret when none was set. */
  config: Config;
  sandbox: DeelSandbox;
  /** A caller token with every scope and all profiles, valid for 12 hours. */
  adminToken: string;
  /** A caller token limited to the first seeded profile (read, create, revoke). */
  workerToken: string;
}

/**
 * Local mode (README: Quick start): with no Deel token outside production, start the built-in Deel sandbox on
 * loopback, a dev signing secret, and sign ready-to-paste caller tokens. The derived config points
 * at the sandbox, so the rest of the gateway runs exactly as it would against Deel.
 */
export async function startLocalMode(operator: Config, env: Record<string, string | undefined> = process.env): Promise<LocalMode> {
  const port = env.DEEL_SANDBOX_PORT === undefined ? 0 : Number(env.DEEL_SANDBOX_PORT);
  const sandbox = await startDeelSandbox({ port });
  const devSecret = operator.auth.jwksUrl === undefined && operator.auth.jwtSecret === undefined;
  const config: Config = {
    ...operator,
    deel: { ...operator.deel, apiUrl: sandbox.url, token: sandbox.orgToken },
    auth: devSecret ? { ...operator.auth, jwtSecret: randomBytes(32).toString("hex") } : operator.auth,
  };
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
  return { config, sandbox, adminToken, workerToken };
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
