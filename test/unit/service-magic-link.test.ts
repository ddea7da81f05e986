/**
 * WorkerSessionService.magicLink checks the link call's input before it mints: a value the Deel
 * client would refuse must never cost the worker its current token.
 */
import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import type { DeelApi } from "../../src/deel/types.js";
import { memoryLedger } from "../../src/sessions/create-store.js";
import { intentStaleAfterMs } from "../../src/sessions/intent.js";
import { WorkerSessionService } from "../../src/sessions/service.js";

const P = "6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50";
const actor = { sub: "caller-1", requestId: "req-1", log: pino({ level: "silent" }) };

function fakeDeel() {
  const createSession = vi.fn(async () => ({ token: "t1", expiresAt: new Date(Date.now() + 86_400_000), replayed: false }));
  const createMagicLink = vi.fn(async () => ({ url: "https://app.deel.test/magic/1", expiresAt: new Date(Date.now() + 600_000) }));
  const deel: DeelApi = { createSession, revokeSession: async () => ({}), createMagicLink };
  return { deel, createSession, createMagicLink };
}

describe("WorkerSessionService.magicLink", () => {
  it.each([
    ["an onSuccessRedirectUrl not normalized (upper-case scheme)", { redirectPath: "/x", onSuccessRedirectUrl: "HTTPS://app.example.com/done" }],
    ["an onSuccessRedirectUrl not normalized (no slashes)", { redirectPath: "/x", onSuccessRedirectUrl: "https:app.example.com/x" }],
    ["an onSuccessRedirectUrl in plain http", { redirectPath: "/x", onSuccessRedirectUrl: "http://app.example.com/" }],
    ["a redirectPath with a ..; segment", { redirectPath: "/..;/admin" }],
    ["a protocol-relative redirectPath", { redirectPath: "//evil.com" }],
  ])("refuses %s as invalid_input before minting", async (_name, options) => {
    const { deel, createSession, createMagicLink } = fakeDeel();
    const store = memoryLedger();
    const service = new WorkerSessionService({ deel, store, intentStaleAfterMs: intentStaleAfterMs(8000) });

    await expect(service.magicLink(actor, P, options)).rejects.toMatchObject({ kind: "invalid_input" });
    expect(createSession).not.toHaveBeenCalled();
    expect(createMagicLink).not.toHaveBeenCalled();
    expect(await store.get(P)).toBeNull();
  });

  it("mints and asks for the link with normalized values", async () => {
    const { deel, createSession, createMagicLink } = fakeDeel();
    const service = new WorkerSessionService({ deel, store: memoryLedger(), intentStaleAfterMs: intentStaleAfterMs(8000) });
    const options = { redirectPath: "/contracts/123/sign?step=2&lang=en", onSuccessRedirectUrl: "https://app.example.com/done" };
    await expect(service.magicLink(actor, P, options)).resolves.toMatchObject({ magicLink: "https://app.deel.test/magic/1" });
    expect(createSession).toHaveBeenCalledTimes(1);
    expect(createMagicLink).toHaveBeenCalledWith("t1", options, expect.anything());
  });
});
