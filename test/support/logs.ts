import { Writable } from "node:stream";

/** A pino destination that keeps every line, for tests that read the logs. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    for (const line of chunk.toString("utf8").split("\n")) if (line !== "") this.lines.push(line);
    callback();
  }

  get text(): string {
    return this.lines.join("\n");
  }

  /** Parsed lines that carry an audit record. */
  audits(): Array<Record<string, unknown>> {
    return this.lines
      .map((line) => JSON.parse(line) as { audit?: Record<string, unknown> })
      .filter((entry) => entry.audit !== undefined)
      .map((entry) => entry.audit as Record<string, unknown>);
  }
}
