/**
 * Reads the responses of an HTTP/1.1 upstream connection, one per request
 * sent, strictly (RFC 9112): the status line, the field lines, then the body
 * framed by the rules of §6.3, chunked bodies decoded, trailers kept. The
 * proxy forwards what it reads through Node's server response, which frames
 * the body anew for the client; this reader only has to know where each
 * response ends, and must never know it differently from the server that
 * sent it. So anything a peer could mean two ways is an error: bare CR or LF,
 * obs-fold, whitespace before a colon, control bytes, Content-Length with
 * Transfer-Encoding, Content-Length lines that disagree, a Transfer-Encoding
 * that does not end in chunked on a reused connection, a chunk size that is
 * not hex or too long, bytes nobody asked for. A 1xx answer other than 101 is
 * read and dropped (Node's HTTP client does the same; the proxy answers
 * `Expect: 100-continue` itself). A 101 is an error unless the request asked
 * to switch to the protocol the 101 names, alone, in HTTP/1.1: then the
 * reader stops, and what follows the 101 is the new protocol's.
 *
 * @module
 */

/** A status line and field lines, as received. */
export interface ResponseHead {
  /** "1.0" or "1.1". */
  version: string;
  status: number;
  reason: string;
  /** Field lines in order, names as received, as Node's raw header list: `[name, value, name, value, ...]`. */
  fields: string[];
}

/** What the reader reports for the response under way. */
export interface ResponseSink {
  head(head: ResponseHead): void;
  data(chunk: Buffer): void;
  /**
   * The response is complete. `reusable`: the connection may carry the next
   * request (HTTP/1.1, no `Connection: close`, framed by length or chunks, no
   * byte beyond the response).
   */
  end(trailers: [string, string][], reusable: boolean): void;
}

/** A request that asked to switch protocols: which one, and who hears of a 101 switching to it. */
export interface ResponseUpgrade {
  /** The protocol name, lower case. */
  protocol: string;
  /** The 101 came: `rest` is what followed its head (the new protocol's first bytes); the reader reads no more. */
  switched(head: ResponseHead, rest: Buffer): void;
}

/** An upstream response that cannot be read one way only. */
export class ResponseError extends Error {
  constructor(message: string) {
    super(`Malformed upstream response: ${message}`);
    this.name = "ResponseError";
  }
}

/** Bytes of a chunk-size line, extensions included. */
const MAX_CHUNK_LINE = 4096;
/** Hex digits of a chunk size: 13 stay below 2^53 (Number.MAX_SAFE_INTEGER). */
const MAX_CHUNK_SIZE_DIGITS = 13;

const STATUS_LINE = /^HTTP\/(1\.[01]) ([1-9]\d\d) ([\t\x20-\x7e\x80-\xff]*)$/;
/** Chunk size, then extensions (RFC 9112 §7.1.1): `;name[=token|quoted-string]`, with optional whitespace. */
const CHUNK_LINE = /^([0-9A-Fa-f]+)((?:[\t ]*;[\t ]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[\t ]*=[\t ]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*)$/;
const CRLF = Buffer.from("\r\n", "latin1");
const END_OF_HEAD = Buffer.from("\r\n\r\n", "latin1");
const NO_BYTES = Buffer.alloc(0);

/** Character classes of field lines, by code (latin1): a byte of a name (RFC 9110 §5.1 token) or of a value (field-vchar, SP, HTAB: no control byte, no NUL). */
const TOKEN = new Uint8Array(256);
const FIELD_VALUE = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;
for (let code = 0; code < 256; code++) FIELD_VALUE[code] = code === 0x09 || (code >= 0x20 && code !== 0x7f) ? 1 : 0;

type Body =
  | { kind: "length"; remaining: number }
  | { kind: "chunk-size" }
  | { kind: "chunk-data"; remaining: number }
  | { kind: "chunk-end" }
  | { kind: "trailers" }
  | { kind: "close" };

const isWhitespace = (code: number) => code === 0x20 || code === 0x09;
const isLineBreak = (code: number) => code === 0x0d || code === 0x0a;

/** The lines of a message's fields that say how it is framed or whether it switches protocols, each line's value as received. */
interface FramingLines {
  connection: string[];
  contentLength: string[];
  /** Undefined when there is no Transfer-Encoding line. */
  transferEncoding: string[] | undefined;
  upgrade: string[];
}

/**
 * Field lines (`name:` OWS value OWS, RFC 9112 §5) of `block` from `start`,
 * lines separated by CRLF (the block without its final empty line), appended
 * to `fields` as a raw header list; returns the lines that frame the message.
 * One pass over the characters, checked against the tables: a CR or LF that
 * is not part of a CRLF, obs-fold, whitespace before a colon, a control byte
 * are errors. Optional whitespace is trimmed by hand (a regex would backtrack).
 */
function parseFieldLines(block: string, start: number, what: string, fields: string[]): FramingLines {
  const framing: FramingLines = { connection: [], contentLength: [], transferEncoding: undefined, upgrade: [] };
  const fail = (at: number, otherwise: string): never => {
    throw new ResponseError(isLineBreak(block.charCodeAt(at)) ? `bare CR or LF in the ${what}` : `${otherwise} in the ${what}`);
  };
  let position = start;
  while (position < block.length) {
    let lineEnd = block.indexOf("\r\n", position);
    if (lineEnd < 0) lineEnd = block.length;
    if (isWhitespace(block.charCodeAt(position))) throw new ResponseError(`obs-fold in the ${what}`);
    let colon = position;
    while (colon < lineEnd && TOKEN[block.charCodeAt(colon)] === 1) colon++;
    // A line without a colon ends the scan at its CRLF: that is a bad name, not a bare line break.
    if (colon === lineEnd) throw new ResponseError(`invalid field name in the ${what}`);
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
function listElements(values: readonly string[]): string[] {
  const elements: string[] = [];
  for (const value of values) {
    for (const element of value.split(",")) {
      const trimmed = element.trim().toLowerCase();
      if (trimmed !== "") elements.push(trimmed);
    }
  }
  return elements;
}

/**
 * Reads one connection's responses. Call {@link expect} before the response
 * to each request, {@link push} with every byte received, {@link close} when
 * the peer closed; a {@link ResponseError} thrown from them means the
 * connection can no longer be read.
 */
export class ResponseReader {
  readonly #maxHeaderSize: number;
  #pending: Buffer = NO_BYTES;
  #sink: ResponseSink | undefined;
  #head: ResponseHead | undefined;
  #body: Body | undefined;
  #reusable = false;
  #trailers: [string, string][] = [];
  #method = "";
  #upgrade: ResponseUpgrade | undefined;

  /** `maxHeaderSize`: bytes of a header block (or a trailer section), status line included. */
  constructor(maxHeaderSize: number) {
    this.#maxHeaderSize = maxHeaderSize;
  }

  /** Whether a response is expected or under way. */
  get busy(): boolean {
    return this.#sink !== undefined;
  }

  /** The response to a request with `method` comes next; `sink` hears of it, `upgrade` of a 101 if the request asked for one. */
  expect(method: string, sink: ResponseSink, upgrade?: ResponseUpgrade): void {
    if (this.#sink !== undefined) throw new Error("A response is already under way");
    this.#sink = sink;
    this.#method = method;
    this.#upgrade = upgrade;
    this.#head = undefined;
    this.#body = undefined;
    this.#trailers = [];
    if (this.#pending.length > 0) this.#run(NO_BYTES);
  }

  /** Bytes received from the upstream. */
  push(bytes: Buffer): void {
    if (this.#sink === undefined) {
      if (bytes.length > 0) throw new ResponseError("bytes received while no response was due");
      return;
    }
    this.#run(bytes);
  }

  /** The upstream closed its side: ends a body delimited by the close, or fails a response cut short. */
  close(): void {
    if (this.#sink === undefined) return;
    if (this.#body?.kind === "close") {
      this.#complete(false);
      return;
    }
    throw new ResponseError(this.#head === undefined ? "the connection closed before a response" : "the connection closed inside the body");
  }

  #run(bytes: Buffer): void {
    let input = this.#pending.length === 0 ? bytes : Buffer.concat([this.#pending, bytes]);
    this.#pending = NO_BYTES;
    while (this.#sink !== undefined) {
      if (this.#head === undefined) {
        const end = input.indexOf(END_OF_HEAD);
        if (end < 0) {
          if (input.length > this.#maxHeaderSize) throw new ResponseError("header block too large");
          this.#pending = input;
          return;
        }
        if (end + 4 > this.#maxHeaderSize) throw new ResponseError("header block too large");
        const block = input.toString("latin1", 0, end);
        input = input.subarray(end + 4);
        const read = this.#readHead(block);
        // A response without a body ends with its head.
        if (read === "complete") return this.#complete(this.#reusable, input);
        if (read === "switched") return this.#switch(input);
        continue;
      }
      const body = this.#body!;
      if (body.kind === "close") {
        if (input.length > 0) this.#sink.data(input);
        return;
      }
      if (body.kind === "length" || body.kind === "chunk-data") {
        if (input.length === 0 && body.remaining > 0) return;
        const taken = Math.min(body.remaining, input.length);
        if (taken > 0) this.#sink.data(input.subarray(0, taken));
        input = input.subarray(taken);
        body.remaining -= taken;
        if (body.remaining > 0) return;
        if (body.kind === "length") return this.#complete(this.#reusable, input);
        this.#body = { kind: "chunk-end" };
        continue;
      }
      if (body.kind === "chunk-end") {
        if (input.length < 2) {
          if (input.length === 1 && input[0] !== 0x0d) throw new ResponseError("chunk data not followed by CRLF");
          this.#pending = input;
          return;
        }
        if (input[0] !== 0x0d || input[1] !== 0x0a) throw new ResponseError("chunk data not followed by CRLF");
        input = input.subarray(2);
        this.#body = { kind: "chunk-size" };
        continue;
      }
      if (body.kind === "chunk-size") {
        const end = input.indexOf(CRLF);
        if (end < 0) {
          if (input.length > MAX_CHUNK_LINE) throw new ResponseError("chunk-size line too long");
          this.#pending = input;
          return;
        }
        const line = input.toString("latin1", 0, end);
        input = input.subarray(end + 2);
        const size = this.#chunkSize(line);
        this.#body = size === 0 ? { kind: "trailers" } : { kind: "chunk-data", remaining: size };
        continue;
      }
      // Trailer section: field lines, then an empty line.
      if (input.length >= 2 && input[0] === 0x0d && input[1] === 0x0a) return this.#complete(this.#reusable, input.subarray(2));
      const end = input.indexOf(END_OF_HEAD);
      if (end < 0) {
        if (input.length > this.#maxHeaderSize) throw new ResponseError("trailer section too large");
        this.#pending = input;
        return;
      }
      if (end + 4 > this.#maxHeaderSize) throw new ResponseError("trailer section too large");
      const block = input.toString("latin1", 0, end);
      input = input.subarray(end + 4);
      const fields: string[] = [];
      parseFieldLines(block, 0, "trailer section", fields);
      for (let index = 0; index < fields.length; index += 2) this.#trailers.push([fields[index]!, fields[index + 1]!]);
      return this.#complete(this.#reusable, input);
    }
  }

  /** Reads a header block: a response without a body is complete; a 101 switched; otherwise more follows. */
  #readHead(block: string): "complete" | "switched" | "more" {
    let statusEnd = block.indexOf("\r\n");
    if (statusEnd < 0) statusEnd = block.length;
    // The status line's pattern admits no CR or LF.
    const status = STATUS_LINE.exec(block.slice(0, statusEnd));
    if (status === null) throw new ResponseError("invalid status line");
    const fields: string[] = [];
    const framing = parseFieldLines(block, statusEnd + 2, "header block", fields);
    const head: ResponseHead = { version: status[1]!, status: Number(status[2]), reason: status[3]!, fields };
    if (head.status === 101) {
      this.#checkSwitch(head, framing);
      this.#head = head;
      return "switched";
    }
    // Interim answers are dropped; the final one follows on the same connection.
    if (head.status < 200) return "more";
    this.#head = head;
    this.#body = this.#framing(head, framing);
    this.#sink!.head(head);
    return this.#body === undefined ? "complete" : "more";
  }

  /** A 101 must switch to the one protocol the request asked for: else the bytes after it are nobody's to judge. */
  #checkSwitch(head: ResponseHead, framing: FramingLines): void {
    if (this.#upgrade === undefined) throw new ResponseError("101 Switching Protocols to a request that asked for no upgrade");
    if (head.version !== "1.1") throw new ResponseError("101 Switching Protocols in HTTP/1.0");
    const protocols = listElements(framing.upgrade);
    if (protocols.length !== 1 || protocols[0] !== this.#upgrade.protocol) {
      throw new ResponseError(`101 Switching Protocols to "${protocols.join(", ")}", not to the ${this.#upgrade.protocol} asked for`);
    }
  }

  /** Hands the connection over to the new protocol; the reader is done. */
  #switch(rest: Buffer): void {
    const head = this.#head!;
    const upgrade = this.#upgrade!;
    this.#sink = undefined;
    this.#head = undefined;
    this.#upgrade = undefined;
    upgrade.switched(head, rest);
  }

  /** RFC 9112 §6.3: how the body of `head` is delimited; undefined when it has none. */
  #framing(head: ResponseHead, framing: FramingLines): Body | undefined {
    this.#reusable = head.version === "1.1" && !(framing.connection.length > 0 && listElements(framing.connection).includes("close"));
    if (this.#method === "HEAD" || head.status === 204 || head.status === 304) return undefined;
    const lengths = framing.contentLength;
    if (framing.transferEncoding !== undefined) {
      if (lengths.length > 0) throw new ResponseError("both Transfer-Encoding and Content-Length");
      if (head.version === "1.0") throw new ResponseError("Transfer-Encoding in an HTTP/1.0 response");
      const codings = listElements(framing.transferEncoding);
      if (codings.at(-1) === "chunked") {
        if (codings.indexOf("chunked") !== codings.length - 1) throw new ResponseError("chunked applied more than once");
        return { kind: "chunk-size" };
      }
      // A body whose coding is not chunked ends with the connection (§6.3 item 4 for responses).
      this.#reusable = false;
      return { kind: "close" };
    }
    if (lengths.length > 0) {
      const first = lengths[0]!;
      if (!/^\d{1,15}$/.test(first) || lengths.some((value) => value !== first)) throw new ResponseError("invalid Content-Length");
      const remaining = Number(first);
      return remaining === 0 ? undefined : { kind: "length", remaining };
    }
    this.#reusable = false;
    return { kind: "close" };
  }

  #chunkSize(line: string): number {
    const match = CHUNK_LINE.exec(line);
    if (match === null) throw new ResponseError("invalid chunk-size line");
    const digits = match[1]!.replace(/^0+(?=.)/, "");
    if (digits.length > MAX_CHUNK_SIZE_DIGITS) throw new ResponseError("chunk size too large");
    return Number.parseInt(digits, 16);
  }

  /**
   * Ends the response under way. One request is sent at a time, so bytes
   * after a complete response were not asked for: they are dropped and the
   * connection is not reused.
   */
  #complete(reusable: boolean, rest: Buffer = NO_BYTES): void {
    const sink = this.#sink!;
    this.#sink = undefined;
    this.#head = undefined;
    this.#body = undefined;
    sink.end(this.#trailers, reusable && rest.length === 0);
  }
}
