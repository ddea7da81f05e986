import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerSessionDocument } from "../generated/operations.js";
import { TEST_AUDIENCE, TEST_ISSUER } from "../support/callers.js";
import { codes, gql, startTestGateway, type TestGateway } from "../support/gateway.js";

type Mode = "serve" | "hang";

/** A JWKS endpoint on loopback that can serve keys or hang. */
async function startJwksServer(keys: JWK[]) {
  let mode: Mode = "serve";
  let fetches = 0;
  const server: Server = createServer((_req, res) => {
    fetches += 1;
    if (mode === "hang") return;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    setMode: (next: Mode) => (mode = next),
    fetches: () => fetches,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function sign(key: CryptoKey | Uint8Array, alg: string, kid: string | undefined, sub = "jwks-caller") {
  const header: { alg: string; kid?: string } = { alg };
  if (kid !== undefined) header.kid = kid;
  return new SignJWT({ scope: "worker_sessions:read worker_sessions:all_profiles" })
    .setProtectedHeader(header)
    .setSubject(sub)
    .setIssuer(TEST_ISSUER)
    .setAudience(TEST_AUDIENCE)
    .setExpirationTime("10m")
    .sign(key);
}

let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
let ec: { publicKey: CryptoKey; privateKey: CryptoKey };
let jwks: Awaited<ReturnType<typeof startJwksServer>>;
let gw: TestGateway;
let profile: string;

beforeAll(async () => {
  rsa = await generateKeyPair("RS256", { extractable: true });
  ec = await generateKeyPair("ES256", { extractable: true });
  jwks = await startJwksServer([
    { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
    { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
  ]);
  gw = await startTestGateway({ env: { AUTH_JWT_SECRET: "", AUTH_JWKS_URL: jwks.url, AUTH_JWKS_TIMEOUT_MS: "500" } });
  [profile] = gw.sandbox.profiles as [string];
});
afterAll(async () => {
  await gw.close();
  await jwks.close();
});

const readAs = (url: string, token: string) => gql(url, WorkerSessionDocument, { profileId: profile }, { token });

describe("callers verified against a JWKS", () => {
  it("accepts a valid RS256 token and a valid ES256 token", async () => {
    expect((await readAs(gw.url, await sign(rsa.privateKey, "RS256", "rsa-1"))).errors).toBeUndefined();
    expect((await readAs(gw.url, await sign(ec.privateKey, "ES256", "ec-1"))).errors).toBeUndefined();
  });

  it("refuses an HS256 token signed with the public key as UNAUTHENTICATED", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const forged = await sign(new TextEncoder().encode(pem), "HS256", "rsa-1");
    expect(codes(await readAs(gw.url, forged))).toEqual(["UNAUTHENTICATED"]);
  });

  it("refuses a token whose kid the JWKS does not hold", async () => {
    const other = await generateKeyPair("RS256");
    expect(codes(await readAs(gw.url, await sign(other.privateKey, "RS256", "unknown-kid")))).toEqual(["UNAUTHENTICATED"]);
  });

  it("refuses a token signed by another key under a known kid", async () => {
    const other = await generateKeyPair("RS256");
    expect(codes(await readAs(gw.url, await sign(other.privateKey, "RS256", "rsa-1")))).toEqual(["UNAUTHENTICATED"]);
  });
});

describe("a JWKS endpoint that is down or hangs", () => {
  /** A gateway verifying against `jwksUrl`: a valid token's request answers UNAUTHENTICATED, promptly. */
  async function expectPromptRefusal(jwksUrl: string, timeoutMs: string): Promise<void> {
    const gateway = await startTestGateway({ env: { AUTH_JWT_SECRET: "", AUTH_JWKS_URL: jwksUrl, AUTH_JWKS_TIMEOUT_MS: timeoutMs } });
    try {
      const started = Date.now();
      const response = await readAs(gateway.url, await sign(rsa.privateKey, "RS256", "rsa-1"));
      expect(response.status).toBe(200);
      expect(codes(response)).toEqual(["UNAUTHENTICATED"]);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await gateway.close();
    }
  }

  it("answers UNAUTHENTICATED quickly when the JWKS refuses connections", async () => {
    const down = await startJwksServer([]);
    await down.close();
    await expectPromptRefusal(down.url, "500");
  });

  it("answers UNAUTHENTICATED within the fetch timeout when the JWKS hangs, never a hang or a 500", async () => {
    const hanging = await startJwksServer([]);
    hanging.setMode("hang");
    try {
      await expectPromptRefusal(hanging.url, "300");
      expect(hanging.fetches()).toBeGreaterThanOrEqual(1);
    } finally {
      await hanging.close();
    }
  });
});
