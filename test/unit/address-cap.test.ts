import { describe, expect, it } from "vitest";
import { addressKey } from "../../src/http/address-cap.js";

describe("the address a connection is counted under", () => {
  it("counts an IPv4 client seen through an IPv6 socket as the IPv4 address", () => {
    expect(addressKey("::ffff:10.0.0.7")).toBe("10.0.0.7");
    expect(addressKey("::FFFF:127.0.0.2")).toBe("127.0.0.2");
    expect(addressKey("10.0.0.7")).toBe("10.0.0.7");
  });

  it("keeps an IPv6 address as it is, and counts a socket without one under one key", () => {
    expect(addressKey("2001:db8::1")).toBe("2001:db8::1");
    expect(addressKey("::ffff:abcd")).toBe("::ffff:abcd");
    expect(addressKey(undefined)).toBe("unknown");
  });
});
