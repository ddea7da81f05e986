import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CallerVerifier } from "../../src/auth/verifier.js";
import { loadConfig } from "../../src/config.js";
import { aCallerToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";

const auth = loadConfig({ DEEL_API_TOKEN: "deel-org-token-0123456789", AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_ISSUER: TEST_ISSUER, AUTH_AUDIENCE: TEST_AUDIENCE }).auth;

/** A refusal, matched by name and words (the name is the AuthError class's, wherever it is declared). */
const refusal = (message: string) => expect.objectContaining({ name: "AuthError", message });

describe("caller verification", () => {
  // Tokens are signed and verified at one fixed instant: no result depends on the wall clock.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"], now: new Date("2026-03-02T10:20:30Z") });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("turns claims into a caller: scope and scp merged, profile ids lower-cased, non-UUIDs dropped", async () => {
    const verifier = new CallerVerifier(auth);
    const token = await aCallerToken({
      sub: "svc",
      scopes: ["worker_sessions:read"],
      profiles: ["6F1E2D3C-4B5A-4978-8A69-0B1C2D3E4F50", "../x"],
      claims: { scp: ["worker_sessions:create"] },
    });
    const caller = await verifier.verify(`Bearer ${token}`);
    expect(caller.sub).toBe("svc");
    expect([...caller.scopes].sort()).toEqual(["worker_sessions:create", "worker_sessions:read"]);
    expect([...caller.profileIds]).toEqual(["6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50"]);
  });

  it("remembers a verified token until its exp, then verifies it again and refuses it", async () => {
    let now = Date.now();
    const verifier = new CallerVerifier(auth, () => now);
    const token = await aCallerToken({ expiresIn: 120 });
    const first = await verifier.verify(`Bearer ${token}`);
    expect(await verifier.verify(`Bearer ${token}`)).toBe(first);
    now += 150_000; // past exp, inside the 60 s tolerance
    expect(await verifier.verify(`Bearer ${token}`)).toBe(first);
    now += 60_000; // past exp + tolerance
    await expect(verifier.verify(`Bearer ${token}`)).rejects.toEqual(refusal("Token expired"));
  });

  it("accepts the Bearer scheme in any letter case", async () => {
    const verifier = new CallerVerifier(auth);
    expect((await verifier.verify(`bearer ${await aCallerToken({ sub: "lower" })}`)).sub).toBe("lower");
  });

  it("never caches a refusal into an acceptance", async () => {
    const verifier = new CallerVerifier(auth);
    const forged = await aCallerToken({ secret: "another-secret-that-is-long-enough-for-hs256!!" });
    await expect(verifier.verify(`Bearer ${forged}`)).rejects.toEqual(refusal("Invalid token signature"));
    await expect(verifier.verify(`Bearer ${forged}`)).rejects.toEqual(refusal("Invalid token signature"));
  });

  it("says why it refused, in its own words, and names no part of the token", async () => {
    const verifier = new CallerVerifier(auth);
    const expired = await aCallerToken({ expiresIn: -600 });
    const forged = await aCallerToken({ secret: "another-secret-that-is-long-enough-for-hs256!!" });
    const elsewhere = await aCallerToken({ issuer: "https://issuer.elsewhere.test" });
    const forAnother = await aCallerToken({ audience: "another-service" });
    const refused: Array<[header: string, token: string, reason: string]> = [
      [`Bearer ${expired}`, expired, "Token expired"],
      [`Bearer ${expired}x y`, expired, "Malformed Authorization header: expected Bearer <JWT>"],
      [`Bearer ${forged}`, forged, "Invalid token signature"],
      [`Bearer ${elsewhere}`, elsewhere, "Invalid token: iss claim check failed"],
      [`Bearer ${forAnother}`, forAnother, "Invalid token: aud claim check failed"],
    ];

    for (const [header, token, reason] of refused) {
      const error = await verifier.verify(header).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error, header).toEqual(refusal(reason));
      // The header segment is the same for every HS256 token; the claims and the signature are this token's own.
      const [, claims, signature] = token.split(".") as [string, string, string];
      expect(error!.message).not.toContain(claims);
      expect(error!.message).not.toContain(signature);
    }
  });
});
