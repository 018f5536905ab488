/**
 * A WebSocket echo (RFC 6455) for the dev cluster's pod server and the proxy's
 * tests: the server's opening handshake (§4.2.2: `Sec-WebSocket-Accept` from
 * the client's key), then every text and binary frame echoed, pings answered,
 * and a close answered with a close (§5.5.1). Frames are read as the spec lays
 * them out (masked from the client, 7-, 16- and 64-bit lengths); fragmented
 * messages are echoed frame by frame.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";

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

/**
 * Answers an HTTP/1.1 upgrade request (a Node server's `upgrade` event): WebSocket gets the handshake
 * (naming `protocol`, `websocket` unless told) and its frames echoed; `onEnd` hears of the client's
 * half-close. Anything else gets 400 and the socket closes.
 */
export function echoWebSocket(request: IncomingMessage, socket: Socket, head: Buffer, options: { protocol?: string; onEnd?: () => void } = {}): void {
  const key = request.headers["sec-websocket-key"];
  if (String(request.headers.upgrade).toLowerCase() !== "websocket" || typeof key !== "string") {
    socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${options.protocol ?? "websocket"}\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
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
    options.onEnd?.();
    socket.end();
  });
  if (head.length > 0) onBytes(head);
}
