/**
 * What reading an HTTP/1.1 message (RFC 9112) is the same for a request and
 * a response: the header block's end and bound, the field lines, the fields
 * that frame the body, and the body itself (a length, chunks, or the
 * connection's close). The request reader (http1-request.ts) and the response
 * reader (http1-response.ts) differ only in their first line and in the rules
 * of §6.3 that pick the framing; both read through this module, so a message
 * is read one way only. Anything a peer could mean two ways is an error: a
 * CR or LF that is not part of a CRLF, obs-fold, whitespace before a colon, a
 * control byte in a value, chunked applied twice or not last, a chunk size that
 * is not hex or too long, a framing field in a trailer section.
 *
 * Chunk extensions are checked against the grammar (§7.1.1) and dropped, and
 * the trailer section is checked and handed over: each reader's user frames
 * the body anew for the next hop, so the next hop can never read the framing
 * differently from the proxy.
 *
 * @module
 */

/** An error class of a reader: its message says what is wrong with the message. */
export type MessageErrorClass = new (detail: string) => Error;

/** Bytes of a chunk-size line, extensions included. */
const MAX_CHUNK_LINE = 4096;
/** Hex digits of a chunk size: 13 stay below 2^53 (Number.MAX_SAFE_INTEGER). */
const MAX_CHUNK_SIZE_DIGITS = 13;

/** Chunk size, then extensions (RFC 9112 §7.1.1): `;name[=token|quoted-string]`, with optional whitespace. */
const CHUNK_LINE = /^([0-9A-Fa-f]+)((?:[\t ]*;[\t ]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[\t ]*=[\t ]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*)$/;
const CRLF = Buffer.from("\r\n", "latin1");
const END_OF_HEAD = Buffer.from("\r\n\r\n", "latin1");
export const NO_BYTES = Buffer.alloc(0);

/** Character classes by code (latin1): a byte of a token (RFC 9110 §5.6.2: method, field name) or of a field value (field-vchar, SP, HTAB: no control byte, no NUL). */
export const TOKEN = new Uint8Array(256);
const FIELD_VALUE = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;
for (let code = 0; code < 256; code++) FIELD_VALUE[code] = code === 0x09 || (code >= 0x20 && code !== 0x7f) ? 1 : 0;

const isWhitespace = (code: number) => code === 0x20 || code === 0x09;
export const isLineBreak = (code: number) => code === 0x0d || code === 0x0a;

/** The lines of a message's fields that say how it is framed or whether it switches protocols, each line's value as received. */
export interface FramingLines {
  connection: string[];
  contentLength: string[];
  /** Undefined when there is no Transfer-Encoding line. */
  transferEncoding: string[] | undefined;
  upgrade: string[];
}

/**
 * Takes a header block (or trailer section) from `input`: the block without
 * its final empty line, and what follows it; undefined while the block is
 * incomplete. `maxSize` bounds the block with its empty line.
 */
export function takeBlock(input: Buffer, maxSize: number, what: string, error: MessageErrorClass): { block: string; rest: Buffer } | undefined {
  const end = input.indexOf(END_OF_HEAD);
  if (end < 0) {
    if (input.length > maxSize) throw new error(`${what} too large`);
    return undefined;
  }
  if (end + 4 > maxSize) throw new error(`${what} too large`);
  return { block: input.toString("latin1", 0, end), rest: input.subarray(end + 4) };
}

/**
 * Field lines (`name:` OWS value OWS, RFC 9112 §5) of `block` from `start`,
 * lines separated by CRLF (the block without its final empty line), appended
 * to `fields` as a raw header list (`[name, value, name, value, ...]`);
 * returns the lines that frame the message. One pass over the characters,
 * checked against the tables: a CR or LF that is not part of a CRLF, obs-fold,
 * whitespace before a colon, a control byte are errors. Optional whitespace is
 * trimmed by hand (a regex would backtrack).
 */
export function parseFieldLines(block: string, start: number, what: string, fields: string[], error: MessageErrorClass): FramingLines {
  const framing: FramingLines = { connection: [], contentLength: [], transferEncoding: undefined, upgrade: [] };
  const fail = (at: number, otherwise: string): never => {
    throw new error(isLineBreak(block.charCodeAt(at)) ? `bare CR or LF in the ${what}` : `${otherwise} in the ${what}`);
  };
  let position = start;
  while (position < block.length) {
    let lineEnd = block.indexOf("\r\n", position);
    if (lineEnd < 0) lineEnd = block.length;
    if (isWhitespace(block.charCodeAt(position))) throw new error(`obs-fold in the ${what}`);
    let colon = position;
    while (colon < lineEnd && TOKEN[block.charCodeAt(colon)] === 1) colon++;
    // A line without a colon ends the scan at its CRLF: that is a bad name, not a bare line break.
    if (colon === lineEnd) throw new error(`invalid field name in the ${what}`);
    if (colon === position || block.charCodeAt(colon) !== 0x3a) fail(colon, "invalid field name");
    let valueStart = colon + 1;
    let valueEnd = lineEnd;
    while (valueStart < valueEnd && isWhitespace(block.charCodeAt(valueStart))) valueStart++;
    while (valueEnd > valueStart && isWhitespace(block.charCodeAt(valueEnd - 1))) valueEnd--;
    for (let at = valueStart; at < valueEnd; at++) {
      // Codes above 0xff cannot come from a latin1 decoding.
      if (FIELD_VALUE[block.charCodeAt(at)] !== 1) fail(at, "invalid field value");
    }
    const name = block.slice(position, colon);
    const value = block.slice(valueStart, valueEnd);
    fields.push(name, value);
    // Only the names that frame a message are compared; their lengths tell them apart before any lower-casing.
    switch (name.length) {
      case 7:
        if (name.toLowerCase() === "upgrade") framing.upgrade.push(value);
        break;
      case 10:
        if (name.toLowerCase() === "connection") framing.connection.push(value);
        break;
      case 14:
        if (name.toLowerCase() === "content-length") framing.contentLength.push(value);
        break;
      case 17:
        if (name.toLowerCase() === "transfer-encoding") (framing.transferEncoding ??= []).push(value);
        break;
    }
    position = lineEnd + 2;
  }
  return framing;
}

/** The comma-separated list elements of field lines' values, lower case. */
export function listElements(values: readonly string[]): string[] {
  const elements: string[] = [];
  for (const value of values) {
    for (const element of value.split(",")) {
      const trimmed = element.trim().toLowerCase();
      if (trimmed !== "") elements.push(trimmed);
    }
  }
  return elements;
}

/** Whether the transfer codings end in chunked (the body is chunked); chunked applied more than once is an error (RFC 9112 §6.1). */
export function endsChunked(transferEncoding: readonly string[], error: MessageErrorClass): boolean {
  const codings = listElements(transferEncoding);
  const chunked = codings.indexOf("chunked");
  if (chunked >= 0 && chunked !== codings.length - 1) throw new error("chunked applied more than once, or not last");
  return chunked >= 0;
}

/** The value of Content-Length lines that agree, digits only (RFC 9110 §8.6: no sign, no list). */
export function contentLength(lines: readonly string[], error: MessageErrorClass): number {
  const first = lines[0]!;
  if (!/^\d{1,15}$/.test(first) || lines.some((value) => value !== first)) throw new error("invalid Content-Length");
  return Number(first);
}

/** How a body is delimited: a length, chunks, or the connection's close. */
export type BodyFraming = "length" | "chunked" | "close";

type BodyState =
  | { kind: "length"; remaining: number }
  | { kind: "chunk-size" }
  | { kind: "chunk-data"; remaining: number }
  | { kind: "chunk-end" }
  | { kind: "trailers" }
  | { kind: "close" };

/** Trailer fields that would change the framing or the target (RFC 9110 §6.5.1): refused in a trailer section. */
const NEVER_TRAILERS = new Set(["content-length", "transfer-encoding", "host"]);

/**
 * Reads one message's body: call {@link decode} with every byte after the
 * head until it returns what follows the body.
 */
export class BodyDecoder {
  readonly #error: MessageErrorClass;
  readonly #maxTrailerSize: number;
  #state: BodyState;
  #pending: Buffer = NO_BYTES;
  /** The trailer section's field lines, as a raw header list. */
  readonly trailers: string[] = [];

  /** `length`: the body's bytes when framed by length; `maxTrailerSize`: bytes of a trailer section. */
  constructor(framing: BodyFraming, length: number, maxTrailerSize: number, error: MessageErrorClass) {
    this.#state = framing === "length" ? { kind: "length", remaining: length } : framing === "chunked" ? { kind: "chunk-size" } : { kind: "close" };
    this.#maxTrailerSize = maxTrailerSize;
    this.#error = error;
  }

  /** Whether the body is delimited by the connection's close (it is complete when the peer closes). */
  get endsWithClose(): boolean {
    return this.#state.kind === "close";
  }

  /** Body bytes so far go to `data`; returns what follows the body once it is complete, undefined while more is due. */
  decode(bytes: Buffer, data: (chunk: Buffer) => void): Buffer | undefined {
    let input = this.#pending.length === 0 ? bytes : Buffer.concat([this.#pending, bytes]);
    this.#pending = NO_BYTES;
    for (;;) {
      const state = this.#state;
      switch (state.kind) {
        case "close":
          if (input.length > 0) data(input);
          return undefined;
        case "length":
        case "chunk-data": {
          const taken = Math.min(state.remaining, input.length);
          if (taken > 0) data(input.subarray(0, taken));
          input = input.subarray(taken);
          state.remaining -= taken;
          if (state.remaining > 0) return undefined;
          if (state.kind === "length") return input;
          this.#state = { kind: "chunk-end" };
          continue;
        }
        case "chunk-end":
          if (input.length < 2) {
            if (input.length === 1 && input[0] !== 0x0d) throw new this.#error("chunk data not followed by CRLF");
            this.#pending = input;
            return undefined;
          }
          if (input[0] !== 0x0d || input[1] !== 0x0a) throw new this.#error("chunk data not followed by CRLF");
          input = input.subarray(2);
          this.#state = { kind: "chunk-size" };
          continue;
        case "chunk-size": {
          const end = input.indexOf(CRLF);
          if (end < 0) {
            if (input.length > MAX_CHUNK_LINE) throw new this.#error("chunk-size line too long");
            this.#pending = input;
            return undefined;
          }
          const size = this.#chunkSize(input.toString("latin1", 0, end));
          input = input.subarray(end + 2);
          this.#state = size === 0 ? { kind: "trailers" } : { kind: "chunk-data", remaining: size };
          continue;
        }
        case "trailers": {
          // Trailer section: field lines, then an empty line.
          if (input.length >= 2 && input[0] === 0x0d && input[1] === 0x0a) return input.subarray(2);
          if (input.length === 1 && input[0] === 0x0d) {
            this.#pending = input;
            return undefined;
          }
          const taken = takeBlock(input, this.#maxTrailerSize, "trailer section", this.#error);
          if (taken === undefined) {
            this.#pending = input;
            return undefined;
          }
          parseFieldLines(taken.block, 0, "trailer section", this.trailers, this.#error);
          for (let index = 0; index < this.trailers.length; index += 2) {
            const name = this.trailers[index]!;
            if (NEVER_TRAILERS.has(name.toLowerCase())) throw new this.#error(`${name} in the trailer section`);
          }
          return taken.rest;
        }
      }
    }
  }

  #chunkSize(line: string): number {
    const match = CHUNK_LINE.exec(line);
    if (match === null) throw new this.#error("invalid chunk-size line");
    const digits = match[1]!.replace(/^0+(?=.)/, "");
    if (digits.length > MAX_CHUNK_SIZE_DIGITS) throw new this.#error("chunk size too large");
    return Number.parseInt(digits, 16);
  }
}
