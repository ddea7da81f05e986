/**
 * The session history's paging input (base/history-page.ts): `first` 1–100 (default 20), and
 * `after` only as a cursor the gateway gave (an event position, base64url), never echoed back.
 */
import { describe, expect, it } from "vitest";
import { historyCursorOf, parseHistoryPage } from "../../src/base/history-page.js";

const POSITION = "1796416726489.000012-9f3a1c2b";

describe("a history page's first and after", () => {
  it("defaults to the 20 newest events, and takes 1 to 100", () => {
    expect(parseHistoryPage(undefined, undefined)).toEqual({ ok: true, value: { first: 20, after: undefined } });
    expect(parseHistoryPage(null, null)).toEqual({ ok: true, value: { first: 20, after: undefined } });
    expect(parseHistoryPage(1, undefined)).toMatchObject({ ok: true, value: { first: 1 } });
    expect(parseHistoryPage(100, undefined)).toMatchObject({ ok: true, value: { first: 100 } });
    for (const first of [0, -1, 101, 1.5, Number.NaN, "10"]) {
      expect(parseHistoryPage(first, undefined)).toEqual({ ok: false, problem: "first must be a whole number from 1 to 100" });
    }
  });

  it("reads back the position of a cursor it gave, and refuses anything else without echoing it", () => {
    const cursor = historyCursorOf(POSITION);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(parseHistoryPage(5, cursor)).toEqual({ ok: true, value: { first: 5, after: POSITION } });
    const pending = historyCursorOf("1796416726489.000000-ulz3k9x2a");
    expect(parseHistoryPage(5, pending)).toMatchObject({ ok: true });
    for (const after of ["", "not a cursor", POSITION, historyCursorOf("1796416726489"), historyCursorOf(`${POSITION}' OR 1=1`), "A".repeat(65), 42]) {
      const checked = parseHistoryPage(5, after);
      expect(checked.ok).toBe(false);
      if (!checked.ok) expect(checked.problem).toBe("after must be a cursor this gateway gave (endCursor or an edge's cursor)");
    }
  });
});
