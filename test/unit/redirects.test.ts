import { isLoopbackHost } from "../../src/base/loopback.js";
import { describe, expect, it } from "vitest";
import {
  checkRedirectPath,
  checkSuccessRedirectUrl,
  MAX_REDIRECT_PATH_LENGTH,
  parseMagicLinkTarget,
  redirectPathProblem,
  successRedirectUrlProblem,
} from "../../src/base/redirects.js";

describe("a magic link's redirectPath", () => {
  it.each([
    "/",
    "/contracts",
    "/contracts/42?tab=sign#top",
    "/contracts/123/sign?step=2&lang=en",
    "/kyc#start",
    "/a-b_c.d~e",
    "/a/b.c/d-e_f~g",
    "/a/..b/c..",
    "/a/.../b",
    "/search?q=a%2Fb&when=10:30",
    "/x?next=/contracts",
    "/a;b=c/d@e/f!$'()*,+",
    "/search?q=a+b&next=+contracts",
    "/x?next=+/contracts&at=+10:30",
  ])("accepts %j, forwarded unchanged", (path) => {
    expect(redirectPathProblem(path)).toBeUndefined();
    expect(checkRedirectPath(path)).toEqual({ ok: true, value: path });
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
    // A scheme where a query or fragment value begins.
    ["/x?next=http:evil.com", /scheme in a query or fragment value/],
    ["/x?next=javascript:alert(1)", /scheme in a query or fragment value/],
    ["/x?a=1&javascript:alert(1)", /scheme in a query or fragment value/],
    ["/x?https://evil.com", /"\/\/"/],
    ["/x#javascript:alert(1)", /scheme in a query or fragment value/],
    ["/x?next=JavaScript%3Aalert(1)", /scheme in a query or fragment value/],
    ["/x%3Fnext=data:text/html,x", /scheme in a query or fragment value/],
    // `..;` is `..` to servers that strip path parameters.
    ["/..;/admin", /"\.\." segment \(nor "\.\.;"\)/],
    ["/a/..;jsessionid=1/admin", /"\.\." segment/],
    ["/%2e%2e;/admin", /"\.\." segment/],
    // Look-alikes that NFKC turns into "..", "/" or "\", raw or percent-encoded.
    ["/\u2025/", /ASCII characters only/],
    ["/\uff0fevil.com", /ASCII characters only/],
    ["/\uff3cevil.com", /ASCII characters only/],
    ["/\uff0e\uff0e/admin", /ASCII characters only/],
    ["/%EF%BC%8Fevil.com", /ASCII characters only/],
    ["/%E2%80%A5/admin", /ASCII characters only/],
    // Invisible and format characters.
    ["/a\u2028b", /ASCII characters only/],
    ["/a\u2029b", /ASCII characters only/],
    ["/a\u200bb", /ASCII characters only/],
    ["/a\u200db", /ASCII characters only/],
    ["/a\u202eb", /ASCII characters only/],
    ["/a\ufeffb", /ASCII characters only/],
    ["/a\u00a0b", /ASCII characters only/],
    ["/a%E2%80%8Bb", /ASCII characters only/],
    ["/a%E2%80%A8b", /ASCII characters only/],
    ["/caf%C3%A9", /ASCII characters only/],
    // ASCII outside the allow-list, raw or decoded.
    ["/a b", /must contain only A-Z a-z 0-9/],
    ["/a<script>", /must contain only A-Z a-z 0-9/],
    ["/a\"b", /must contain only A-Z a-z 0-9/],
    ["/a`b", /must contain only A-Z a-z 0-9/],
    ["/a%20b", /must contain only A-Z a-z 0-9/],
    ["/a%3Cb", /must contain only A-Z a-z 0-9/],
    // Percent-encoded more than once: refused whatever it hides.
    ["/%2525252e%2525252e/admin", /percent-encoded twice/],
    ["/a%2541", /percent-encoded twice/],
    ["/%2561", /percent-encoded twice/],
    // Overlong UTF-8 for "." is not valid UTF-8.
    ["/%C0%AE%C0%AE/admin", /malformed percent-encoding/],
  ])("refuses %j", (path, reason) => {
    const problem = redirectPathProblem(path);
    expect(problem).toMatch(/^redirectPath must be a relative path/);
    expect(problem).toMatch(reason);
  });

  // Form-decoding turns "+" into a space, and a URL parser drops leading spaces: an app behind the
  // path that reads `next` and follows it would run `javascript:`.
  it.each([
    "/x?next=+javascript:alert(1)",
    "/x?next=++javascript:alert(1)",
    "/x?next=%2Bjavascript:alert(1)",
    "/x?next=%2bdata:text/html,x",
    "/x?a=1&b=+vbscript:msgbox(1)",
    "/x?a=1;next=+javascript:alert(1)",
    "/x?+javascript:alert(1)",
    "/x#next=+javascript:alert(1)",
    "/x?next=+JavaScript:alert(1)",
    "/x?next=+mailto:a@b.c",
  ])("refuses %j, whose form-decoded value parses as a URL with another scheme than the page's", (path) => {
    expect(redirectPathProblem(path)).toMatch(/^redirectPath must be a relative path.*: it must not carry a scheme in a query or fragment value/);
  });

  it("refuses anything that is not a string", () => {
    for (const value of [undefined, null, 42, ["/a"]]) expect(redirectPathProblem(value)).toMatch(/empty/);
  });

  it("never echoes the refused value", () => {
    expect(redirectPathProblem("/x?next=javascript:alert(1)")).not.toContain("alert");
    expect(redirectPathProblem("/\uff0fevil.com")).not.toContain("evil");
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

describe("the normalized onSuccessRedirectUrl", () => {
  const allowed = ["https://app.example.com"];

  it.each([
    ["HTTPS://app.example.com/done", "https://app.example.com/done"],
    ["https:app.example.com/x", "https://app.example.com/x"],
    ["https:/app.example.com/x", "https://app.example.com/x"],
    ["https://APP.example.com:443/a/./b/../c?q=1#f", "https://app.example.com/a/c?q=1#f"],
    ["https://app.example.com", "https://app.example.com/"],
    ["https://app.example.com/caf\u00e9", "https://app.example.com/caf%C3%A9"],
  ])("accepts %j as %j, which it accepts again as it is", (input, href) => {
    expect(checkSuccessRedirectUrl(input, allowed)).toEqual({ ok: true, value: href });
    expect(checkSuccessRedirectUrl(href, allowed)).toEqual({ ok: true, value: href });
  });

  it("refuses a value whose normalized form grows past 2048 characters", () => {
    const value = `https://app.example.com/${"\u00e9".repeat(400)}`;
    expect(value.length).toBeLessThanOrEqual(2048);
    expect(successRedirectUrlProblem(value, allowed)).toMatch(/at most 2048/);
  });
});

describe("parseMagicLinkTarget, the MagicLinkTarget constructor", () => {
  const allowed = ["https://app.example.com"];

  it("answers both values normalized, and the URL only when given", () => {
    expect(parseMagicLinkTarget({ redirectPath: "/kyc#start", onSuccessRedirectUrl: "HTTPS://app.example.com/done" }, allowed)).toEqual({
      ok: true,
      value: { redirectPath: "/kyc#start", onSuccessRedirectUrl: "https://app.example.com/done" },
    });
    expect(parseMagicLinkTarget({ redirectPath: "/", onSuccessRedirectUrl: null }, allowed)).toEqual({ ok: true, value: { redirectPath: "/" } });
    expect(parseMagicLinkTarget({ redirectPath: "/" }, [])).toEqual({ ok: true, value: { redirectPath: "/" } });
  });

  it("answers the first problem", () => {
    expect(parseMagicLinkTarget({ redirectPath: "//evil", onSuccessRedirectUrl: "https://evil.test/" }, allowed)).toEqual({
      ok: false,
      problem: expect.stringMatching(/^redirectPath must be a relative path/),
    });
    expect(parseMagicLinkTarget({ redirectPath: "/", onSuccessRedirectUrl: "https://evil.test/" }, allowed)).toEqual({
      ok: false,
      problem: expect.stringMatching(/not in MAGIC_LINK_REDIRECT_ORIGINS/),
    });
    expect(parseMagicLinkTarget(undefined, allowed)).toMatchObject({ ok: false });
  });
});

describe("loopback hosts", () => {
  it("are localhost, 127.0.0.1 and [::1] as URL#hostname spells them", () => {
    for (const host of ["localhost", "LocalHost", "127.0.0.1", "[::1]", "::1"]) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ["127.0.0.2", "localhost.evil.test", "example.com", "[::2]"]) expect(isLoopbackHost(host)).toBe(false);
  });
});
