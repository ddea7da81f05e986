import { describe, expect, it } from "vitest";
import { MAX_REDIRECT_PATH_LENGTH, redirectPathProblem, successRedirectUrlProblem } from "../../src/sessions/redirects.js";

describe("a magic link's redirectPath", () => {
  it.each(["/", "/contracts", "/contracts/42?tab=sign#top", "/a/b.c/d-e_f~g", "/caf%C3%A9", "/a/..b/c.."])("accepts %j", (path) => {
    expect(redirectPathProblem(path)).toBeUndefined();
  });

  it("accepts exactly 512 characters and refuses 513", () => {
    expect(redirectPathProblem(`/${"a".repeat(MAX_REDIRECT_PATH_LENGTH - 1)}`)).toBeUndefined();
    expect(redirectPathProblem(`/${"a".repeat(MAX_REDIRECT_PATH_LENGTH)}`)).toMatch(/at most 512 characters/);
  });

  it.each([
    ["", /empty/],
    ["https://evil", /scheme/],
    ["javascript:alert(1)", /scheme/],
    ["contracts", /start with "\/"/],
    ["\\evil", /start with "\/"/],
    ["//evil.com", /"\/\/"/],
    ["/a//b", /"\/\/"/],
    ["/%2f%2fevil.com", /"\/\/"/],
    ["/a/../b", /"\.\." segment/],
    ["/..", /"\.\." segment/],
    ["/a?next=../b", /"\.\." segment/],
    ["/%2e%2e/x", /"\.\." segment/],
    ["/%2E%2e/x", /"\.\." segment/],
    ["/%252e%252e/x", /"\.\." segment/],
    ["/a\\b", /backslashes/],
    ["/a%5cb", /backslashes/],
    ["/a\nb", /control characters/],
    ["/a%0d%0aSet-Cookie:x", /control characters/],
    ["/a\u0000", /control characters/],
    ["/a%zz", /malformed percent-encoding/],
  ])("refuses %j", (path, reason) => {
    const problem = redirectPathProblem(path);
    expect(problem).toMatch(/^redirectPath must be a relative path/);
    expect(problem).toMatch(reason);
  });

  it("refuses anything that is not a string", () => {
    for (const value of [undefined, null, 42, ["/a"]]) expect(redirectPathProblem(value)).toMatch(/empty/);
  });
});

describe("a magic link's onSuccessRedirectUrl", () => {
  const allowed = ["https://app.example.com", "http://localhost:3000"];

  it("accepts an https URL on an allowed origin, and http on an allowed localhost origin", () => {
    expect(successRedirectUrlProblem("https://app.example.com/onboarding/done?x=1", allowed)).toBeUndefined();
    expect(successRedirectUrlProblem("https://APP.example.com:443/done", allowed)).toBeUndefined();
    expect(successRedirectUrlProblem("http://localhost:3000/back", allowed)).toBeUndefined();
  });

  it("refuses every value, naming the variable the operator must set, when no origin is allowed", () => {
    expect(successRedirectUrlProblem("https://app.example.com/done", [])).toMatch(/the operator must set MAGIC_LINK_REDIRECT_ORIGINS/);
  });

  it.each([
    ["https://evil.example.com/done", /not in MAGIC_LINK_REDIRECT_ORIGINS/],
    ["https://app.example.com.evil.test/done", /not in MAGIC_LINK_REDIRECT_ORIGINS/],
    ["https://app.example.com:8443/done", /not in MAGIC_LINK_REDIRECT_ORIGINS/],
    ["http://app.example.com/done", /only https/],
    ["http://localhost:4000/back", /not in MAGIC_LINK_REDIRECT_ORIGINS/],
    ["javascript:alert(1)", /only https/],
    ["https://user:pw@app.example.com/done", /credentials/],
    ["/done", /not a URL/],
    ["not a url", /whitespace/],
    ["https://app.example.com/a\tb", /whitespace or control/],
    ["https://app.example.com\\@evil.test/", /backslashes/],
    ["", /empty/],
    [`https://app.example.com/${"a".repeat(2048)}`, /at most 2048/],
  ])("refuses %j", (url, reason) => {
    expect(successRedirectUrlProblem(url, allowed)).toMatch(reason);
  });
});
