import { describe, expect, it } from "vitest";
import { AuthError, CallerVerifier } from "../../src/auth/verifier.js";
import { loadConfig } from "../../src/config.js";
import { aCallerToken, TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "../support/callers.js";

const auth = loadConfig({ DEEL_API_TOKEN: "deel-org-token-0123456789", AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_ISSUER: TEST_ISSUER, AUTH_AUDIENCE: TEST_AUDIENCE }).auth;

describe("caller verification", () => {
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
    await expect(verifier.verify(`Bearer ${token}`)).rejects.toThrow(new AuthError("Token expired"));
  });

  it("accepts the Bearer scheme in any letter case", async () => {
    const verifier = new CallerVerifier(auth);
    expect((await verifier.verify(`bearer ${await aCallerToken({ sub: "lower" })}`)).sub).toBe("lower");
  });

  it("never caches a refusal into an acceptance", async () => {
    const verifier = new CallerVerifier(auth);
    const forged = await aCallerToken({ secret: "another-secret-that-is-long-enough-for-hs256!!" });
    await expect(verifier.verify(`Bearer ${forged}`)).rejects.toBeInstanceOf(AuthError);
    await expect(verifier.verify(`Bearer ${forged}`)).rejects.toBeInstanceOf(AuthError);
  });

  it("names no token in its refusals", async () => {
    const verifier = new CallerVerifier(auth);
    const expired = await aCallerToken({ expiresIn: -600 });
    const error = await verifier.verify(`Bearer ${expired}`).catch((e: unknown) => e as Error);
    expect(String((error as Error).message)).not.toContain(expired.slice(0, 20));
    await expect(verifier.verify(`Bearer ${expired}x y`)).rejects.toThrow(/Malformed Authorization header/);
  });
});
