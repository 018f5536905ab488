/**
 * Joins a client's socket to its upstream's once the proxy has judged all it
 * will judge of the connection (a TLS connection allowed by its server name,
 * an HTTP/1.1 connection switched to WebSocket): bytes pass both ways
 * unchanged, with no buffering beyond the sockets' own and a pipe's; a
 * half-close (FIN) is passed on as a half-close and a reset (RST) as a reset.
 *
 * Two plain TCP sockets are spliced in the kernel (the native
 * {@linkcode SocketSplice}: splice(2) through a pipe per direction, no byte
 * through JavaScript). A TLS socket (a connection the proxy terminates) holds
 * bytes only the proxy can decrypt: it is piped through Node's streams. The
 * two Node sockets stay open, idle, while the kernel splices, and close when
 * it ends: whoever counts or tracks them by their `close` sees the connection's
 * real end, and resetting either (the proxy's shutdown) resets both. Either
 * way, the bytes passed each way can be read while the connection is open
 * (the splice's own counts, or the pipe's) and are reported once at the end.
 *
 * @example
 * ```ts
 * spliceSockets(client, await connectUpstream(connection), {
 *   joined: (read) => open.add(read),
 *   ended: ({ toUpstream, toClient }) => count(toUpstream, toClient),
 * });
 * ```
 *
 * @module
 */
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { SocketSplice } from "../datapath/native.ts";

/** What the kernel splice needs of Node's TCP handle: its fd, and stopping Node's reads. */
interface StreamHandle {
  fd?: unknown;
  reading?: boolean;
  readStop?: () => number;
}

const EMPTY = Buffer.alloc(0);

/** The bytes a joined connection passed on each way, from the join on (its first bytes included). */
export interface PassedBytes {
  toUpstream: number;
  toClient: number;
}

/**
 * Where a joined connection's bytes are counted: `joined` once, when it is joined, with a reader of its
 * running totals (it makes no system call, so a scrape may read every open connection's), then `ended` once,
 * with its final totals; the reader is not to be called after that.
 */
export interface PassedBytesCounter {
  joined(read: () => PassedBytes): void;
  ended(bytes: PassedBytes): void;
}

/** Makes the counter of one connection passed on under the policy and rule that let it through ("" when none is named). */
export type CountPassedBytes = (policy: string, rule: string) => PassedBytesCounter;

const UNCOUNTED: PassedBytesCounter = { joined: () => undefined, ended: () => undefined };

/** Bytes the caller read of one side and judged, to be passed on before the rest: a ClientHello, a server's bytes after its 101. */
export interface FirstBytes {
  toUpstream?: Buffer;
  toClient?: Buffer;
}

/** A joined connection's totals so far: what Node passed on (all of it on the Node pipe), plus what the kernel splice has once it runs. */
class RunningBytes {
  readonly throughNode: PassedBytes;
  splice: SocketSplice | undefined;

  constructor(first: FirstBytes) {
    this.throughNode = { toUpstream: first.toUpstream?.length ?? 0, toClient: first.toClient?.length ?? 0 };
  }

  read(): PassedBytes {
    const { toUpstream, toClient } = this.throughNode;
    if (this.splice === undefined) return { toUpstream, toClient };
    // Once the splice has ended, its final counts.
    const { aToB, bToA } = this.splice.passed();
    return { toUpstream: toUpstream + aToB, toClient: toClient + bToA };
  }
}

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

/**
 * Passes the `first` bytes on, then bytes, half-closes and resets both ways between `client` and `upstream`
 * from now on; `counter` counts what passes, `first` included.
 */
export function spliceSockets(client: Socket, upstream: Socket, counter: PassedBytesCounter = UNCOUNTED, first: FirstBytes = {}): void {
  // Either side may close its sending half while the other still sends (TLS close_notify then FIN, a WebSocket close).
  client.allowHalfOpen = true;
  upstream.allowHalfOpen = true;
  // A relay passes segments on as they come: Nagle's wait for an ACK before a small one is the sender's choice, not the proxy's.
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  upstream.on("error", () => resetSocket(client));
  client.on("error", () => resetSocket(upstream));
  const passed = new RunningBytes(first);
  counter.joined(() => passed.read());
  const ended = () => counter.ended(passed.read());
  if (first.toUpstream !== undefined && first.toUpstream.length > 0) upstream.write(first.toUpstream);
  if (first.toClient !== undefined && first.toClient.length > 0) client.write(first.toClient);
  // The upstream's fd exists, and its first bytes may be written, once it is connected.
  if (upstream.connecting) upstream.once("connect", () => join(client, upstream, passed, ended));
  else join(client, upstream, passed, ended);
}

/** The one place that chooses how two sockets are joined: in the kernel when both are plain TCP sockets Node reads itself. */
function join(client: Socket, upstream: Socket, passed: RunningBytes, ended: () => void): void {
  if (client.destroyed || upstream.destroyed) {
    ended();
    return;
  }
  const handles = [tcpHandle(client), tcpHandle(upstream)] as const;
  if (handles[0] === undefined || handles[1] === undefined) pipeThroughNode(client, upstream, passed.throughNode, ended);
  else spliceInKernel(client, upstream, handles[0], handles[1], passed, ended);
}

/**
 * Pipes both ways through Node's streams, counting what passes. A socket closing before it has passed on its
 * end of stream (reset by the proxy, destroyed) resets the other, as the kernel splice's abort does; one
 * closing after has ended the other's sending half, which then closes once its bytes are written.
 */
function pipeThroughNode(client: Socket, upstream: Socket, bytes: PassedBytes, ended: () => void): void {
  client.on("data", (chunk: Buffer) => (bytes.toUpstream += chunk.length));
  upstream.on("data", (chunk: Buffer) => (bytes.toClient += chunk.length));
  let open = 2;
  for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
    socket.once("close", () => {
      if (!other.writableEnded) resetSocket(other);
      if (--open === 0) ended();
    });
  }
  client.pipe(upstream);
  upstream.pipe(client);
}

/** The handle of a socket whose bytes on the wire are its own (not TLS) and whose fd Node exposes; undefined otherwise. */
function tcpHandle(socket: Socket): StreamHandle | undefined {
  if (socket instanceof TLSSocket) return undefined;
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  const usable = handle != null && typeof handle.fd === "number" && handle.fd >= 0 && typeof handle.readStop === "function";
  return usable ? handle : undefined;
}

/**
 * Hands both connections to the kernel: Node stops reading them, what it read and did not deliver is
 * written to the other side, and once everything Node was to write is with the kernel, the splice starts
 * (it writes after those bytes, in order).
 */
function spliceInKernel(client: Socket, upstream: Socket, clientHandle: StreamHandle, upstreamHandle: StreamHandle, passed: RunningBytes, ended: () => void): void {
  const fromClient = stopReading(client, clientHandle);
  const fromUpstream = stopReading(upstream, upstreamHandle);
  if (fromClient.length > 0) upstream.write(fromClient);
  if (fromUpstream.length > 0) client.write(fromUpstream);
  passed.throughNode.toUpstream += fromClient.length;
  passed.throughNode.toClient += fromUpstream.length;
  void Promise.all([flushed(client), flushed(upstream)]).then(() => {
    // A write failed, or either was reset meanwhile: its error handler has reset the other.
    if (client.destroyed || upstream.destroyed) {
      ended();
      return;
    }
    try {
      // The client's socket is the splice's a, the upstream's its b.
      passed.splice = new SocketSplice(clientHandle.fd as number, upstreamHandle.fd as number, () => {
        client.destroy();
        upstream.destroy();
        ended();
      });
    } catch {
      // Out of fds or memory: the connection cannot go on.
      resetSocket(client);
      resetSocket(upstream);
      ended();
      return;
    }
    const abort = () => passed.splice?.abort();
    client.once("close", abort);
    upstream.once("close", abort);
  });
}

/** Stops Node's reads of `socket` for good, and returns what Node read and did not deliver. */
function stopReading(socket: Socket, handle: StreamHandle): Buffer {
  socket.pause();
  const chunks: Buffer[] = [];
  for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) chunks.push(chunk);
  // read() may have asked the handle for more: it reads nothing before the loop's next turn, and is stopped now.
  handle.readStop!();
  handle.reading = false;
  return Buffer.concat(chunks);
}

/** Resolves once every byte written to `socket` so far is with the kernel (or the write failed). */
function flushed(socket: Socket): Promise<void> {
  if (socket.writableLength === 0) return Promise.resolve();
  // Writes complete in order: the callback of this one follows every earlier one's.
  return new Promise((resolve) => socket.write(EMPTY, () => resolve()));
}
