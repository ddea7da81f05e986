import { connect, type Socket } from "node:net";

/**
 * Opens a plain TCP connection to the gateway's origin (`http://host:port`) and waits until it is
 * up. `localAddress` binds the client's end: on Linux all of 127/8 is loopback, so `127.0.0.2` is
 * another client address on the same host.
 */
export function openSocket(origin: string, localAddress?: string): Promise<Socket> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ...(localAddress === undefined ? {} : { localAddress }) });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** What a client saw on a connection once the other side closed it. */
export interface Closed {
  /** Everything the server sent, as text. */
  received: string;
  /** How many of the client's trickled pieces were written before the close. */
  piecesSent: number;
}

/**
 * Resolves when the socket closes, with what the server sent. A reset by the server counts as a
 * close; the error is not an outcome of its own.
 */
export function whenClosed(socket: Socket, sent: () => number = () => 0): Promise<Closed> {
  let received = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => (received += chunk));
  socket.on("error", () => undefined);
  return new Promise((resolve) => {
    if (socket.closed) resolve({ received, piecesSent: sent() });
    else socket.once("close", () => resolve({ received, piecesSent: sent() }));
  });
}

/**
 * A slow client: writes `head` at once, then one of `pieces` every `everyMs`, until all are sent or
 * the server closes the connection; resolves on the close with what the server sent and how many
 * pieces went out. After the last piece it keeps the connection open and waits for the server.
 */
export async function trickle(origin: string, head: string, pieces: readonly string[], everyMs: number): Promise<Closed> {
  const socket = await openSocket(origin);
  let sent = 0;
  const closed = whenClosed(socket, () => sent);
  socket.write(head);
  const timer = setInterval(() => {
    if (sent === pieces.length || socket.destroyed) {
      clearInterval(timer);
      return;
    }
    socket.write(pieces[sent] as string);
    sent += 1;
  }, everyMs);
  try {
    return await closed;
  } finally {
    clearInterval(timer);
  }
}

/** The status line's code of a raw HTTP response, or undefined when nothing was answered. */
export function statusOf(raw: string): number | undefined {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(raw);
  return match === null ? undefined : Number(match[1]);
}

/**
 * Writes one keep-alive `GET path` on an open socket and resolves with the status of the answer, or
 * undefined when the server closes the connection first or nothing comes within `withinMs`. The
 * socket stays open after an answer.
 */
export function ask(socket: Socket, path: string, withinMs = 5_000): Promise<number | undefined> {
  return new Promise((resolve) => {
    let received = "";
    const done = (status: number | undefined) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(status);
    };
    const onData = (chunk: Buffer | string) => {
      received += chunk.toString();
      const status = statusOf(received);
      if (status !== undefined) done(status);
    };
    const onClose = () => done(undefined);
    const timer = setTimeout(() => done(undefined), withinMs);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.on("error", () => undefined);
    if (socket.destroyed) return done(undefined);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}
