/**
 * Reading a byte stream whole, up to a limit: the one reader behind the gateway's request bodies,
 * the Deel client's response bodies and the Deel sandbox's request bodies.
 *
 * Plain node:stream only (no graphql, no Apollo), because the Deel layer uses it too.
 */
import type { Readable } from "node:stream";

/** The stream carried more than the limit. Nothing past the limit was buffered. */
export class BodyTooLargeError extends Error {
  /** The limit that was exceeded, in bytes. */
  readonly limit: number;

  constructor(limit: number) {
    super(`body exceeds ${limit} bytes`);
    this.name = "BodyTooLargeError";
    this.limit = limit;
  }
}

function prematureClose(): Error {
  // The code Node's own stream helpers use for the same situation, so that callers see one shape.
  return Object.assign(new Error("the stream closed before its end"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
}

/**
 * Reads `stream` to its end and resolves with all its bytes as one Buffer (empty when it carried
 * none). Chunks may be Buffers, Uint8Arrays or strings (read as UTF-8).
 *
 * - Past `limit` bytes it rejects with `BodyTooLargeError` at once and leaves the stream paused with
 *   the rest unread: the caller decides to drain it (`resume()`) or end it (`destroy()`).
 * - It rejects with the stream's own error, or with an `ERR_STREAM_PREMATURE_CLOSE` error when the
 *   stream closes before its end (a client that went away).
 * - Its `error` listener stays attached after it settles, so that an error emitted later (a client
 *   aborting while the caller drains) is never an unhandled `error` event.
 */
export function readBoundedBody(stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onClose);
      if (error) reject(error);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer | Uint8Array | string) => {
      const buffer = Buffer.isBuffer(chunk) ? chunk : typeof chunk === "string" ? Buffer.from(chunk, "utf8") : Buffer.from(chunk);
      size += buffer.length;
      if (size > limit) {
        stream.pause();
        settle(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(buffer);
    };
    const onEnd = () => settle();
    const onError = (error: Error) => settle(error);
    const onClose = () => settle(prematureClose());

    if (stream.destroyed) {
      settle(prematureClose());
      return;
    }
    stream.on("error", onError);
    stream.on("end", onEnd);
    stream.on("close", onClose);
    stream.on("data", onData);
  });
}
