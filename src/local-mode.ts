import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import type { Config } from "./config.js";
import { Scope } from "./auth/caller.js";
import { isLoopbackHost } from "./base/loopback.js";
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
 * The redirect origin local mode admits for magic links (on top of MAGIC_LINK_REDIRECT_ORIGINS):
 * a dev server on this machine, so the README's magic-link example runs as written.
 */
export const LOCAL_MAGIC_LINK_REDIRECT_ORIGIN = "http://localhost:3000";

/**
 * Local mode (README: Quick start): with no Deel token outside production, start the built-in Deel sandbox on
 * loopback, a dev signing secret, and sign ready-to-paste caller tokens. The derived config points
 * at the sandbox, so the rest of the gateway runs exactly as it would against Deel.
 */
export async function startLocalMode(operator: Config, env: Record<string, string | undefined> = process.env): Promise<LocalMode> {
  const port = env.DEEL_SANDBOX_PORT === undefined ? 0 : Number(env.DEEL_SANDBOX_PORT);
  const sandbox = await startDeelSandbox({ port });
  const devSecret = operator.auth.jwksUrl === undefined && operator.auth.jwtSecret === undefined;
  const auth = devSecret ? { ...operator.auth, jwtSecret: randomBytes(32).toString("hex") } : operator.auth;
  const first = sandbox.profiles[0] as string;
  let adminToken = "";
  let workerToken = "";
  if (auth.jwtSecret !== undefined) {
    const key = new TextEncoder().encode(auth.jwtSecret);
    const sign = (sub: string, claims: Record<string, unknown>) => {
      const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt().setExpirationTime("12h");
      if (auth.issuer !== undefined) jwt.setIssuer(auth.issuer);
      if (auth.audience !== undefined) jwt.setAudience(auth.audience);
      return jwt.sign(key);
    };
    adminToken = await sign("local-admin", { scope: Object.values(Scope).join(" ") });
    workerToken = await sign(`local-worker-${first}`, {
      scope: [Scope.read, Scope.create, Scope.revoke].join(" "),
      [auth.profileClaim]: [first],
    });
  }
  // The admin token is prefilled only where the page is served to this machine alone.
  const headers: Record<string, string> = adminToken !== "" && isLoopbackHost(operator.host) ? { Authorization: `Bearer ${adminToken}` } : {};
  const config: Config = {
    ...operator,
    deel: { ...operator.deel, apiUrl: sandbox.url, token: sandbox.orgToken },
    auth,
    magicLinkRedirectOrigins: operator.magicLinkRedirectOrigins.includes(LOCAL_MAGIC_LINK_REDIRECT_ORIGIN)
      ? operator.magicLinkRedirectOrigins
      : [...operator.magicLinkRedirectOrigins, LOCAL_MAGIC_LINK_REDIRECT_ORIGIN],
    sandboxPrefill: { document: EXAMPLE_OPERATION, variables: { profileId: first }, headers },
  };
  return { config, sandbox, adminToken, workerToken };
}

/** What Sandbox opens with in local mode: mint a session for the first seeded worker, then read it. */
export const EXAMPLE_OPERATION = `# Local mode: the Authorization header below is the admin caller printed at start-up.
mutation CreateSession($profileId: ID!) {
  createWorkerSession(input: { profileId: $profileId }) {
    token
    session { id status expiresAt createdBy }
  }
}

query ReadSession($profileId: ID!) {
  workerSession(profileId: $profileId) { id status expiresAt revokedAt createdBy }
}

mutation RevokeSession($profileId: ID!) {
  revokeWorkerSession(input: { profileId: $profileId }) { revokedAt session { status revokedBy } }
}

mutation MagicLink($profileId: ID!) {
  createWorkerMagicLink(input: { profileId: $profileId, redirectPath: "/" }) { magicLink expiresAt session { id status } }
}
`;


/** A ready `curl` for the first seeded worker: the same request Sandbox would send, without a browser. */
function curlLine(graphqlUrl: string, adminToken: string, profileId: string): string {
  const body = JSON.stringify({
    query: "mutation ($p: ID!) { createWorkerSession(input: { profileId: $p }) { session { status expiresAt } } }",
    variables: { p: profileId },
  });
  return `curl -s ${graphqlUrl} -H 'content-type: application/json' -H 'authorization: Bearer ${adminToken}' --data '${body}'`;
}

/** The banner `npm start` prints in local mode. */
export function localBanner(graphqlUrl: string, local: LocalMode): string {
  const lines = [
    "",
    "Worker Session Gateway — local mode (built-in Deel sandbox on loopback; no call reaches Deel)",
    "",
    `  GraphQL + Apollo Sandbox:  ${graphqlUrl}`,
    "    (the Sandbox page loads Apollo's embeddable Sandbox from Apollo's CDN; its telemetry is off;",
    `    offline it falls back to GraphiQL served by the gateway itself: ${graphqlUrl}#local)`,
    `  Deel sandbox:              ${local.sandbox.url}`,
    "",
    "  CORS admits any loopback origin on any port (http(s)://localhost:*, 127.0.0.1:*, [::1]:*),",
    `    Apollo Sandbox and CORS_ORIGINS; in production only CORS_ORIGINS.`,
    `  Magic links may redirect to ${[...local.config.magicLinkRedirectOrigins].join(", ")}`,
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
      "  Without a browser (or offline), mint a session for the first worker:",
      `    ${curlLine(graphqlUrl, local.adminToken, local.sandbox.profiles[0] as string)}`,
      "",
      "  For the README's curl examples (admin caller, first worker), paste into your shell:",
      `    export TOKEN='${local.adminToken}' PROFILE='${local.sandbox.profiles[0] as string}'`,
      "",
    );
  } else {
    lines.push("  Callers are verified against AUTH_JWKS_URL; bring your own tokens.", "");
  }
  return lines.join("\n");
}
