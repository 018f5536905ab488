/**
 * A real WebSocket server for the proxy's upgrade tests: an HTTP/1.1 server
 * whose upgrade requests get the dev cluster's WebSocket echo
 * (src/devcluster/node-runtime/websocket-echo.ts), a plain answer, a 101 to
 * another protocol, or a handshake held back, by path. It records the
 * requests it got.
 *
 * @module
 */
import { EventEmitter, once } from "node:events";
import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { echoWebSocket } from "../../src/devcluster/node-runtime/websocket-echo.ts";

export { acceptKey, echoWebSocket, encodeFrame, FrameReader } from "../../src/devcluster/node-runtime/websocket-echo.ts";
export type { Frame } from "../../src/devcluster/node-runtime/websocket-echo.ts";

/** What the echo server answers an upgrade request with, by its path. */
export type UpgradeAnswer =
  /** The handshake, then echo. */
  | { kind: "accept" }
  /** A plain response with this status (the connection stays HTTP/1.1). */
  | { kind: "status"; status: number }
  /** A 101 naming another protocol than asked (a hostile server). */
  | { kind: "switch-to"; protocol: string }
  /** Nothing until `release` is called, then the handshake. */
  | { kind: "gated"; released: Promise<void> };

export interface WebSocketEchoServer {
  port: number;
  /** Upgrade requests received, in order (their raw header lists). */
  upgradeRequests: { path: string; rawHeaders: string[] }[];
  /** Plain requests received, in order. */
  plainRequests: { path: string; rawHeaders: string[] }[];
  /** Emits "upgrade-request" when one arrives, "ws-end" when a WebSocket peer half-closes, "ws-error" on its error. */
  events: EventEmitter;
  /** Connections the server accepted. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Starts the server on 127.0.0.1. Upgrade requests get `answer(path)`; plain requests get 200 with
 * `upstream METHOD PATH upgrade=VALUE` (VALUE: the Upgrade field received, or `-`).
 */
export async function startWebSocketEchoServer(options: {
  answer: (path: string) => UpgradeAnswer;
}): Promise<WebSocketEchoServer> {
  const upgradeRequests: WebSocketEchoServer["upgradeRequests"] = [];
  const plainRequests: WebSocketEchoServer["plainRequests"] = [];
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = http.createServer({
    // Only upgrade requests answered with a handshake leave the parser; the others are plain requests to it.
    shouldUpgradeCallback: (request) => options.answer(request.url ?? "").kind !== "status",
  }, (request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? "";
    const answer = request.headers.upgrade === undefined ? undefined : options.answer(path);
    (answer === undefined ? plainRequests : upgradeRequests).push({ path, rawHeaders: request.rawHeaders });
    request.resume();
    request.on("end", () => {
      const body = `upstream ${request.method} ${path} upgrade=${request.headers.upgrade ?? "-"}`;
      const status = answer?.kind === "status" ? answer.status : 200;
      response.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
      response.end(body);
    });
  });
  server.on("connection", (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("upgrade", (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = request.url ?? "";
    upgradeRequests.push({ path, rawHeaders: request.rawHeaders });
    events.emit("upgrade-request", path);
    socket.on("error", (error) => events.emit("ws-error", error));
    const answer = options.answer(path);
    const onEnd = () => events.emit("ws-end");
    if (answer.kind === "switch-to") echoWebSocket(request, socket, head, { protocol: answer.protocol, onEnd });
    else if (answer.kind === "gated") void answer.released.then(() => socket.writable && echoWebSocket(request, socket, head, { onEnd }));
    else echoWebSocket(request, socket, head, { onEnd });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    upgradeRequests,
    plainRequests,
    events,
    connections: () => connections,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
