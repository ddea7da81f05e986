import { describe, expect, it } from "vitest";
import { corsOriginCheck, isLoopbackOrigin } from "../../src/http/server.js";

describe("CORS origins", () => {
  it("loopback origins on any port are loopback; look-alikes and non-origins are not", () => {
    for (const origin of ["http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:5173", "https://localhost:5173", "http://localhost"]) {
      expect(isLoopbackOrigin(origin), origin).toBe(true);
    }
    for (const origin of [
      "null",
      "",
      "http://localhost.evil.com:3000",
      "http://evil.com",
      "http://127.0.0.2:3000",
      "http://0.0.0.0:3000",
      "http://localhost:3000/path",
      "http://user@localhost:3000",
      "http://LOCALHOST:3000",
      "ws://localhost:3000",
      "file://localhost",
      "http://127.0.0.1.nip.io:3000",
    ]) {
      expect(isLoopbackOrigin(origin), origin).toBe(false);
    }
  });

  it("production admits exactly its list; local mode adds loopback, nothing else", () => {
    const production = corsOriginCheck(["https://app.example.com"], false);
    expect(production("https://app.example.com")).toBe(true);
    expect(production("http://localhost:3000")).toBe(false);
    expect(production(undefined)).toBe(false);
    const local = corsOriginCheck(["https://studio.apollographql.com"], true);
    expect(local("http://localhost:3000")).toBe(true);
    expect(local("http://[::1]:5173")).toBe(true);
    expect(local("https://studio.apollographql.com")).toBe(true);
    expect(local("https://app.example.com")).toBe(false);
    expect(local("null")).toBe(false);
  });
});
