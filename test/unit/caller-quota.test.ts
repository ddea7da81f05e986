import { describe, expect, it } from "vitest";
import { CallerQuota } from "../../src/auth/caller-quota.js";

describe("the per-caller mutation quota", () => {
  it("allows the limit per rolling minute per sub, and says truly when the next one fits", () => {
    let now = 0;
    const quota = new CallerQuota(60, () => now);
    // 60 mutations spread over the first 29.5 s.
    for (let i = 0; i < 60; i++) {
      now = i * 500;
      expect(quota.take("a").allowed).toBe(true);
    }
    now = 30_000;
    const refused = quota.take("a");
    expect(refused).toEqual({ allowed: false, retryAfterSeconds: 31 });
    expect(quota.take("b").allowed).toBe(true);
    // Just before the promised time it is still refused; at it, one more fits.
    now = 30_000 + 30_000 - 1;
    expect(quota.take("a").allowed).toBe(false);
    now = 30_000 + 31_000;
    expect(quota.take("a").allowed).toBe(true);
  });

  it("tells a caller refused right after the roll-over how long the previous minute still weighs", () => {
    let now = 0;
    const quota = new CallerQuota(10, () => now);
    for (let i = 0; i < 10; i++) expect(quota.take("a").allowed).toBe(true);
    now = 60_000;
    const refused = quota.take("a");
    expect(refused.allowed).toBe(false);
    const wait = (refused as { retryAfterSeconds: number }).retryAfterSeconds;
    now = 60_000 + (wait - 1) * 1000;
    expect(quota.take("a").allowed).toBe(false);
    now = 60_000 + wait * 1000;
    expect(quota.take("a").allowed).toBe(true);
  });

  it("is off at 0", () => {
    const quota = new CallerQuota(0);
    for (let i = 0; i < 1000; i++) expect(quota.take("a").allowed).toBe(true);
  });
});
