/**
 * The one bounded body reader, on in-memory streams.
 */
import { describe, expect, it } from "vitest";
import { Readable } from "node:stream";
import { BodyTooLargeError, readBoundedBody } from "../../src/base/bounded-body.js";

const bytes = (n: number, fill = "a") => Buffer.alloc(n, fill);

describe("readBoundedBody", () => {
  it("resolves with every byte, in order, up to and including the limit", async () => {
    const body = await readBoundedBody(Readable.from([bytes(3, "a"), bytes(4, "b"), bytes(3, "c")]), 10);
    expect(body.toString("latin1")).toBe("aaabbbbccc");
  });

  it("resolves with an empty Buffer for an empty stream", async () => {
    const body = await readBoundedBody(Readable.from([]), 10);
    expect(Buffer.isBuffer(body)).toBe(true);
    expect(body).toHaveLength(0);
  });

  it("accepts Uint8Array and string chunks", async () => {
    const body = await readBoundedBody(Readable.from([new Uint8Array([104, 105]), " ✓"]), 10);
    expect(body.toString("utf8")).toBe("hi ✓");
  });

  it("rejects with BodyTooLargeError one byte past the limit", async () => {
    const error = await readBoundedBody(Readable.from([bytes(6), bytes(5)]), 10).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(error).toMatchObject({ name: "BodyTooLargeError", limit: 10, message: "body exceeds 10 bytes" });
  });

  it("leaves the rest unread and the stream paused, for the caller to drain or destroy", async () => {
    const stream = Readable.from([bytes(4), bytes(4), bytes(4), bytes(4), bytes(4)]);
    await expect(readBoundedBody(stream, 6)).rejects.toBeInstanceOf(BodyTooLargeError);
    expect(stream.isPaused()).toBe(true);
    expect(stream.destroyed).toBe(false);
    expect(stream.listenerCount("data")).toBe(0);
    // The reader stopped at the chunk that crossed the limit: the caller drains the other 12 bytes.
    let drained = 0;
    stream.on("data", (chunk: Buffer) => (drained += chunk.length));
    const ended = new Promise((resolve) => stream.once("end", resolve));
    stream.resume();
    await ended;
    expect(drained).toBe(12);
  });

  it("rejects with the stream's error, and keeps listening for later ones", async () => {
    const stream = new Readable({ read() {} });
    const pending = readBoundedBody(stream, 10);
    stream.push(bytes(2));
    stream.destroy(new Error("boom"));
    await expect(pending).rejects.toThrow("boom");
    expect(stream.listenerCount("error")).toBe(1);
  });

  it("rejects with ERR_STREAM_PREMATURE_CLOSE when the stream closes before its end", async () => {
    const stream = new Readable({ read() {} });
    const pending = readBoundedBody(stream, 10);
    stream.push(bytes(2));
    stream.destroy();
    await expect(pending).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
    await expect(readBoundedBody(stream, 10)).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
  });
});
