/**
 * A small real WebSocket server (RFC 6455) for the proxy's upgrade tests: an
 * HTTP/1.1 server whose `upgrade` event completes the opening handshake
 * (§4.2.2: `Sec-WebSocket-Accept` from the client's key) and then echoes
 * every text and binary message, answers pings, and answers a close with a
 * close (§5.5.1). Frames are read as the spec lays them out (masked from the
 * client, 7-, 16- and 64-bit lengths); fragmented messages are echoed frame
 * by frame. It records the upgrade requests it got and the raw sockets of
 * its WebSocket connections.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { EventEmitter, once } from "node:events";
import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** RFC 6455 §1.3: the GUID the accept key is derived with. */
const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + WEBSOCKET_GUID).digest("base64");
}

/** One frame, unmasked. */
export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Encodes a frame; `mask`: as a client must send it (§5.3). */
export function encodeFrame(frame: Frame, mask?: Buffer): Buffer {
  const length = frame.payload.length;
  const header: number[] = [(frame.fin ? 0x80 : 0) | frame.opcode];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) header.push(maskBit | length);
  else if (length < 65536) header.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    header.push(maskBit | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(length));
    header.push(...big);
  }
  if (!mask) return Buffer.concat([Buffer.from(header), frame.payload]);
  const masked = Buffer.from(frame.payload);
  for (let index = 0; index < masked.length; index++) masked[index]! ^= mask[index % 4]!;
  return Buffer.concat([Buffer.from(header), mask, masked]);
}

/** Reads frames from bytes as they come; returns the complete ones and keeps the rest. */
export class FrameReader {
  #pending = Buffer.alloc(0);

  push(bytes: Buffer): Frame[] {
    this.#pending = Buffer.concat([this.#pending, bytes]);
    const frames: Frame[] = [];
    for (;;) {
      const input = this.#pending;
      if (input.length < 2) return frames;
      const masked = (input[1]! & 0x80) !== 0;
      let length = input[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (input.length < 4) return frames;
        length = input.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (input.length < 10) return frames;
        length = Number(input.readBigUInt64BE(2));
        offset = 10;
      }
      const maskKey = masked ? input.subarray(offset, offset + 4) : undefined;
      if (masked) offset += 4;
      if (input.length < offset + length) return frames;
      const payload = Buffer.from(input.subarray(offset, offset + length));
      if (maskKey) for (let index = 0; index < payload.length; index++) payload[index]! ^= maskKey[index % 4]!;
      frames.push({ fin: (input[0]! & 0x80) !== 0, opcode: input[0]! & 0x0f, payload });
      this.#pending = input.subarray(offset + length);
    }
  }
}

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
 * `upstream METHOD PATH upgrade=VALUE` (VALUE: the Upgrade field received, or `-`), or the status of
 * `plainStatus(path)` when it gives one.
 */
export async function startWebSocketEchoServer(options: {
  answer: (path: string) => UpgradeAnswer;
  plainStatus?: (path: string) => number | undefined;
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
      const status = answer?.kind === "status" ? answer.status : (options.plainStatus?.(path) ?? 200);
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
    const key = String(request.headers["sec-websocket-key"] ?? "");
    const handshake = (protocol: string) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${protocol}\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
      echo(socket, head);
    };
    if (answer.kind === "switch-to") handshake(answer.protocol);
    else if (answer.kind === "gated") void answer.released.then(() => socket.writable && handshake("websocket"));
    else handshake("websocket");
  });
  function echo(socket: Socket, head: Buffer): void {
    const reader = new FrameReader();
    socket.allowHalfOpen = true;
    const onBytes = (bytes: Buffer) => {
      for (const frame of reader.push(bytes)) {
        if (frame.opcode === 0x8) {
          socket.end(encodeFrame({ fin: true, opcode: 0x8, payload: frame.payload }));
          return;
        }
        if (frame.opcode === 0x9) socket.write(encodeFrame({ fin: true, opcode: 0xa, payload: frame.payload }));
        else if (frame.opcode !== 0xa) socket.write(encodeFrame(frame));
      }
    };
    socket.on("data", onBytes);
    socket.on("end", () => {
      events.emit("ws-end");
      socket.end();
    });
    if (head.length > 0) onBytes(head);
  }
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
