import { describe, expect, it } from "vitest";
import { magicLinkBody, magicLinkErrorFor, magicLinkFrom } from "../../src/deel/magic-link.js";
import type { RawResponse } from "../../src/deel/response.js";
import { parseMagicLinkTarget } from "../../src/base/redirects.js";

const answer = (status: number, body: unknown): RawResponse => ({
  status,
  headers: {},
  body: Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
});
const EXPIRES = "2030-01-01T10:10:00.000Z";

describe("Deel's answer to POST /magic-link", () => {
  it("reads an https magic_link and its expires_at", () => {
    const link = magicLinkFrom(answer(201, { data: { magic_link: "https://app.deel.com/magic/abc?x=1", expires_at: EXPIRES } }));
    expect(link).toEqual({ url: "https://app.deel.com/magic/abc?x=1", expiresAt: new Date(EXPIRES) });
  });

  it.each([
    ["an http link", { data: { magic_link: "http://app.deel.com/magic/abc", expires_at: EXPIRES } }],
    ["a javascript: link", { data: { magic_link: "javascript:alert(1)", expires_at: EXPIRES } }],
    ["a link with credentials", { data: { magic_link: "https://u:p@app.deel.com/m", expires_at: EXPIRES } }],
    ["no link", { data: { expires_at: EXPIRES } }],
    ["a bad expires_at", { data: { magic_link: "https://app.deel.com/m", expires_at: "tomorrow" } }],
    ["truncated JSON", '{"data":{"magic_link":"https://app.deel.com/m"'],
    ["an {\"error\"} body", { error: "Unauthorized" }],
  ])("finds nothing usable in %s", (_name, body) => {
    expect(magicLinkFrom(answer(201, body))).toBeUndefined();
  });

  it("reads a 401 or 403 as the worker token refused, whatever the body, and never copies the body", () => {
    for (const status of [401, 403]) {
      const error = magicLinkErrorFor(answer(status, { error: "Unauthorized: token abc-secret expired" }));
      expect(error.kind).toBe("worker_token_refused");
      expect(error.status).toBe(status);
      expect(error.message).not.toContain("abc-secret");
    }
  });

  it("reads a 500 with an {\"error\"} body as unavailable, and a 400 envelope as bad_request with Deel's request id", () => {
    expect(magicLinkErrorFor(answer(500, { error: "Internal Server Error" })).kind).toBe("unavailable");
    const bad = magicLinkErrorFor(answer(400, { request: { api_req_id: "req-1" }, errors: [{ message: "data.redirect_path is required" }] }));
    expect(bad.kind).toBe("bad_request");
    expect(bad.deelRequestId).toBe("req-1");
  });
});

describe("the body sent to POST /magic-link", () => {
  const target = (input: { redirectPath: string; onSuccessRedirectUrl?: string }) => {
    const parsed = parseMagicLinkTarget(input, ["https://app.example.com"]);
    if (!parsed.ok) throw new Error(parsed.problem);
    return parsed.value;
  };

  it("carries redirect_path, and on_success_redirect_url only when given", () => {
    expect(JSON.parse(magicLinkBody(target({ redirectPath: "/a" })))).toEqual({ data: { redirect_path: "/a" } });
    expect(JSON.parse(magicLinkBody(target({ redirectPath: "/a", onSuccessRedirectUrl: "https://app.example.com/d" })))).toEqual({
      data: { redirect_path: "/a", on_success_redirect_url: "https://app.example.com/d" },
    });
  });

  it("sends the target as the edge normalized it", () => {
    expect(JSON.parse(magicLinkBody(target({ redirectPath: "/kyc#start", onSuccessRedirectUrl: "HTTPS://app.example.com/done" })))).toEqual({
      data: { redirect_path: "/kyc#start", on_success_redirect_url: "https://app.example.com/done" },
    });
  });
});
