/**
 * Joins a client's socket to its upstream's once the proxy has judged all it
 * will judge of the connection (a TLS connection allowed by its server name,
 * an HTTP/1.1 connection switched to WebSocket): bytes pass both ways
 * unchanged, with no buffering beyond the sockets' own; a half-close (FIN)
 * is passed on as a half-close and a reset (RST) as a reset.
 *
 * @example
 * ```ts
 * spliceSockets(client, await connectUpstream(connection));
 * ```
 *
 * @module
 */
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";

/**
 * Ends a socket with an RST, or plainly once its sending half is closed: libuv refuses to reset a socket
 * being shut down (EINVAL), and Node then never closes its handle, which would leak. A TLS socket has no
 * TCP handle of its own to reset (Node throws): it is destroyed.
 */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded || socket instanceof TLSSocket) socket.destroy();
  else socket.resetAndDestroy();
}

/** Passes bytes, half-closes and resets both ways between `client` and `upstream` from now on. */
export function spliceSockets(client: Socket, upstream: Socket): void {
  // Either side may close its sending half while the other still sends (TLS close_notify then FIN, a WebSocket close).
  client.allowHalfOpen = true;
  upstream.allowHalfOpen = true;
  upstream.on("error", () => resetSocket(client));
  client.on("error", () => resetSocket(upstream));
  client.pipe(upstream);
  upstream.pipe(client);
}
