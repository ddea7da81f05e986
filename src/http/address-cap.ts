import type { Server } from "node:http";
import type { Socket } from "node:net";

/**
 * The key connections are counted under: the client's address, with an IPv4 address seen through
 * an IPv6 socket (`::ffff:10.0.0.7`) counted as the IPv4 one.
 */
export function addressKey(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return "unknown";
  return remoteAddress.toLowerCase().startsWith("::ffff:") && remoteAddress.includes(".") ? remoteAddress.slice(7) : remoteAddress;
}

/**
 * Holds each client address to `maxPerAddress` open connections: one more from an address already
 * at its cap is closed at once, with no response, as Node closes one past `maxConnections`. So
 * one client (a flood of keep-alive sockets) cannot take every slot of `HTTP_MAX_CONNECTIONS`,
 * and another client, the probes of `/healthz` and `/readyz` among them, still gets one. A slot is
 * given back when its connection closes. Counts live in one map, entries removed at zero.
 */
export function capConnectionsPerAddress(server: Server, maxPerAddress: number): void {
  const open = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const key = addressKey(socket.remoteAddress);
    const count = open.get(key) ?? 0;
    if (count >= maxPerAddress) {
      socket.destroy();
      return;
    }
    open.set(key, count + 1);
    socket.once("close", () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left <= 0) open.delete(key);
      else open.set(key, left);
    });
  });
}
