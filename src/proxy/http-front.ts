/**
 * The proxy's HTTP front end: takes the client connections the proxy
 * accepted (on its transparent listener, or any socket), tells HTTP/2 with
 * prior knowledge from HTTP/1.1 by the connection preface (RFC 9113 §3.4:
 * `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`), and hands each to the server of its
 * protocol (http1-front.ts, http2-front.ts). Given a TLS front end, a
 * connection whose first byte is a TLS handshake record goes to it instead
 * (tls-front.ts), and one that is not TLS only if rules may admit its
 * requests. A client that does not send enough bytes to tell within the
 * header timeout is disconnected.
 *
 * @example
 * ```ts
 * const front = createHttpFront({
 *   judge: (request) => ({ allow: rules.match(request) >= 0, policy: "x/web", rule: "ingress[0]" }),
 *   connectUpstream: async (connection) => net.connect(connection.serverPort, connection.serverAddress),
 *   flowLog: (entry) => logger.info(entry),
 * });
 * net.createServer((socket) => front.handleConnection(socket)).listen(15001);
 * ```
 *
 * @module
 */
import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import type { ConnectionInfo, HttpFrontOptions } from "./http-front-options.ts";
import { HTTP_FRONT_DEFAULTS } from "./http-front-options.ts";
import { createHttp1Front } from "./http1-front.ts";
import { createHttp2Front } from "./http2-front.ts";
import { TLS_HANDSHAKE_RECORD } from "./tls-front.ts";
import type { TlsFront } from "./tls-front.ts";

/** RFC 9113 §3.4: what every HTTP/2 connection starts with. */
export const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** The proxy's HTTP front end. */
export interface HttpFront {
  /**
   * Serves one accepted client connection until it closes. `connection` names
   * its addresses; by default they are the socket's (a transparent socket's
   * local address is the client's original destination).
   */
  handleConnection(socket: Socket, connection?: ConnectionInfo): void;
  /**
   * Serves the decrypted stream of a connection the proxy terminated: HTTP/1.1 or HTTP/2, never TLS again;
   * by the protocol the client negotiated (ALPN) when it did, else by its first bytes.
   */
  serveDecrypted(socket: Socket, connection: ConnectionInfo, alpn?: string): void;
  /** Closes every connection being served. */
  close(): void;
}

/** Which protocol the bytes so far say: "http2", "http1", or undefined while they still could be either. */
export function sniffProtocol(bytes: Buffer): "http1" | "http2" | undefined {
  const compared = Math.min(bytes.length, HTTP2_PREFACE.length);
  if (!bytes.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared))) return "http1";
  return compared === HTTP2_PREFACE.length ? "http2" : undefined;
}

/** The addresses of an accepted socket. */
export function connectionInfoOf(socket: Socket): ConnectionInfo {
  return {
    clientAddress: socket.remoteAddress ?? "",
    clientPort: socket.remotePort ?? 0,
    serverAddress: socket.localAddress ?? "",
    serverPort: socket.localPort ?? 0,
  };
}

/**
 * A stream over a TLS socket the proxy terminated, for Node's HTTP/2 session: given the TLS socket itself
 * (a TLS layer over a TCP socket it did not accept), the session never reads it. Reads, writes, ends and
 * errors pass both ways.
 */
function streamBridge(socket: Socket): Socket {
  const bridge = new Duplex({
    read: () => socket.resume(),
    write: (chunk: Buffer, _encoding, callback) => socket.write(chunk, callback),
    final: (callback) => {
      socket.end();
      callback();
    },
    destroy: (error, callback) => {
      socket.destroy();
      callback(error);
    },
  });
  socket.on("data", (chunk: Buffer) => {
    if (!bridge.push(chunk)) socket.pause();
  });
  socket.on("end", () => bridge.push(null));
  socket.on("error", (error) => bridge.destroy(error));
  socket.on("close", () => bridge.destroy());
  return bridge as unknown as Socket;
}

export function createHttpFront(options: HttpFrontOptions, tls?: TlsFront): HttpFront {
  const http1 = createHttp1Front(options);
  const http2 = createHttp2Front(options);
  const sniffing = new Set<Socket>();
  const headersTimeout = options.headersTimeoutMs ?? HTTP_FRONT_DEFAULTS.headersTimeoutMs;
  /** Reads the first bytes to tell the protocol; `tls`: a TLS front end that takes TLS connections and judges plain ones first. */
  const sniff = (socket: Socket, connection: ConnectionInfo, tls: TlsFront | undefined, decrypted = false) => {
    let received: Buffer = Buffer.alloc(0);
    sniffing.add(socket);
    const timer = setTimeout(() => socket.destroy(), headersTimeout);
    const stop = () => {
      clearTimeout(timer);
      sniffing.delete(socket);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", stop);
    };
    const onError = () => {
      stop();
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      // Most connections tell their protocol by their first read: it is not copied.
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (tls && received.length === chunk.length) {
        if (received[0] === TLS_HANDSHAKE_RECORD) {
          stop();
          tls.serve(socket, received, connection);
          return;
        }
        if (tls.refusesPlain(socket, connection)) return stop();
      }
      const protocol = sniffProtocol(received);
      if (protocol === undefined) return;
      stop();
      if (protocol === "http2") http2.serve(decrypted ? streamBridge(socket) : socket, received, connection);
      else http1.serve(socket, received, connection);
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", stop);
  };
  return {
    handleConnection(socket, connection = connectionInfoOf(socket)) {
      sniff(socket, connection, tls);
    },
    serveDecrypted(socket, connection, alpn) {
      if (alpn === "h2") http2.serve(streamBridge(socket), Buffer.alloc(0), connection);
      else if (alpn === "http/1.1") http1.serve(socket, Buffer.alloc(0), connection);
      else sniff(socket, connection, undefined, true);
    },
    close() {
      for (const socket of sniffing) socket.destroy();
      http1.close();
      http2.close();
      tls?.close();
    },
  };
}
