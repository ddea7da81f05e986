/**
 * WorkerSessionService.magicLink takes a MagicLinkTarget, which only the edge's constructor makes:
 * a value the Deel client would refuse cannot reach it, so it can never cost the worker its current
 * token. (The refusals themselves are the edge's: test/unit/edge-input.test.ts.)
 */
import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import { parseMagicLinkTarget } from "../../src/base/redirects.js";
import type { DeelApi } from "../../src/deel/types.js";
import { memoryLedger } from "../../src/sessions/create-store.js";
import { intentStaleAfterMs } from "../../src/sessions/intent.js";
import { WorkerSessionService } from "../../src/sessions/service.js";
import { aProfileId } from "../support/profiles.js";

const P = aProfileId("6f1e2d3c-4b5a-4978-8a69-0b1c2d3e4f50");
const actor = { sub: "caller-1", requestId: "req-1", log: pino({ level: "silent" }) };

function fakeDeel() {
  const createSession = vi.fn(async () => ({ token: "t1", expiresAt: new Date(Date.now() + 86_400_000), replayed: false }));
  const createMagicLink = vi.fn(async () => ({ url: "https://app.deel.test/magic/1", expiresAt: new Date(Date.now() + 600_000) }));
  const deel: DeelApi = { createSession, revokeSession: async () => ({}), createMagicLink };
  return { deel, createSession, createMagicLink };
}

describe("WorkerSessionService.magicLink", () => {
  it("mints and asks for the link with the target as the edge normalized it", async () => {
    const { deel, createSession, createMagicLink } = fakeDeel();
    const service = new WorkerSessionService({ deel, store: memoryLedger(), intentStaleAfterMs: intentStaleAfterMs(8000) });
    const parsed = parseMagicLinkTarget(
      { redirectPath: "/contracts/123/sign?step=2&lang=en", onSuccessRedirectUrl: "HTTPS://app.example.com/done" },
      ["https://app.example.com"],
    );
    if (!parsed.ok) throw new Error(parsed.problem);
    await expect(service.magicLink(actor, P, { target: parsed.value, idempotencyKey: undefined })).resolves.toMatchObject({
      magicLink: "https://app.deel.test/magic/1",
    });
    expect(createSession).toHaveBeenCalledTimes(1);
    expect(createMagicLink).toHaveBeenCalledWith(
      "t1",
      { redirectPath: "/contracts/123/sign?step=2&lang=en", onSuccessRedirectUrl: "https://app.example.com/done" },
      expect.anything(),
    );
  });
});
