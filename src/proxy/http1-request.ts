/**
 * Reads the requests of an HTTP/1.1 client connection strictly (RFC 9112),
 * one after the other as they are pipelined: the request line, then the field
 * lines and the body as every HTTP/1.1 message is read (http1-message.ts),
 * framed by the rules of §6.3 for requests. The proxy forwards what it reads
 * framed anew (a length stays a length, chunks are chunked again without
 * their extensions, the trailer section is checked and dropped: the rules
 * never saw it), so the upstream cannot read a request's end elsewhere than
 * this reader did; and what a server could read two ways is refused: what
 * http1-message.ts refuses, and here a request line that is not `method SP
 * target SP HTTP/x.y` (a target byte outside visible ASCII, a NUL), versions
 * other than 1.0 and 1.1, Content-Length with Transfer-Encoding, more than one
 * Content-Length line, a Transfer-Encoding that does not end in chunked, or in
 * HTTP/1.0 (§6.1), and a header block over its bound. A CR or LF that is not
 * part of a CRLF is refused as soon as it arrives, not when the block ends.
 *
 * Bytes that do not start as a request line at all (no method then a space,
 * or no ` HTTP/` on the first line) are not HTTP: the error says so when
 * they are the connection's first bytes, so that the caller may close
 * without an answer. Empty lines before a request line are skipped (§2.2).
 *
 * @example
 * ```ts
 * const reader = new RequestReader(16384, {
 *   head: (head) => console.log(head.method, head.target, head.body),
 *   data: (chunk) => upstream.write(chunk),
 *   end: () => console.log("complete"),
 * });
 * reader.push(Buffer.from("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); // GET / none, complete
 * ```
 *
 * @module
 */
import { BodyDecoder, contentLength, endsChunked, isLineBreak, NO_BYTES, parseFieldLines, takeBlock, TOKEN } from "./http1-message.ts";
import type { BodyFraming } from "./http1-message.ts";

/** A request line and field lines, as received, and how the body is framed. */
export interface RequestHead {
  method: string;
  /** The request target, as received. */
  target: string;
  version: "1.0" | "1.1";
  /** Field lines in order, names as received, as a raw header list: `[name, value, name, value, ...]`. */
  fields: string[];
  /** How the body is delimited; "none": the request has none. */
  body: Exclude<BodyFraming, "close"> | "none";
}

/** What the reader reports, request after request. */
export interface RequestSink {
  head(head: RequestHead): void;
  /** Body bytes, unframed: a view of the bytes pushed, never copied. */
  data(chunk: Buffer): void;
  /** The request is complete. */
  end(): void;
}

/** A request that cannot be read one way only; `notHttp`: the connection's first bytes are not HTTP at all. */
export class RequestError extends Error {
  readonly notHttp: boolean;
  constructor(message: string, notHttp = false) {
    super(message);
    this.name = "RequestError";
    this.notHttp = notHttp;
  }
}

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;

/**
 * Reads one connection's requests. Call {@link push} with every byte
 * received; the sink hears of each request in turn. A {@link RequestError}
 * thrown from it means the connection can no longer be read.
 */
export class RequestReader {
  readonly #maxHeaderSize: number;
  readonly #sink: RequestSink;
  readonly #data: (chunk: Buffer) => void;
  #pending: Buffer = NO_BYTES;
  /** Bytes of {@link #pending} already checked (a bare CR or LF, the first line's start) while the head was incomplete. */
  #scanned = 0;
  /** How far the connection's first request line is checked to start as HTTP: in its method, after it, or done. */
  #firstLine: "method" | "rest" | "checked" = "method";
  #body: BodyDecoder | undefined;
  #paused = false;
  #heads = 0;

  /** `maxHeaderSize`: bytes of a header block (request line included) or of a trailer section. */
  constructor(maxHeaderSize: number, sink: RequestSink) {
    this.#maxHeaderSize = maxHeaderSize;
    this.#sink = sink;
    this.#data = (chunk) => sink.data(chunk);
  }

  /** Heads read so far. */
  get requests(): number {
    return this.#heads;
  }

  /** Where the reader is: between requests ("idle", nothing of the next one received), in a head, or in a body. */
  get state(): "idle" | "head" | "body" {
    if (this.#body !== undefined) return "body";
    return this.#pending.length > 0 ? "head" : "idle";
  }

  /** Bytes received and not read yet (held while paused, or an incomplete head). */
  get buffered(): number {
    return this.#pending.length;
  }

  /** Bytes received from the client. */
  push(bytes: Buffer): void {
    this.#pending = this.#pending.length === 0 ? bytes : Buffer.concat([this.#pending, bytes]);
    if (!this.#paused) this.#run();
  }

  /** Stops reading after the head or the request being reported (call it from the sink); bytes after it are held. */
  pause(): void {
    this.#paused = true;
  }

  /** Reads on, from the bytes held. */
  resume(): void {
    this.#paused = false;
    if (this.#pending.length > 0) this.#run();
  }

  #run(): void {
    let input = this.#pending;
    this.#pending = NO_BYTES;
    while (!this.#paused && input.length > 0) {
      const body = this.#body;
      if (body !== undefined) {
        const rest = body.decode(input, this.#data);
        if (rest === undefined) return;
        input = rest;
        this.#body = undefined;
        this.#sink.end();
        continue;
      }
      // Empty lines before a request line (RFC 9112 §2.2).
      while (input.length >= 2 && input[0] === 0x0d && input[1] === 0x0a) input = input.subarray(2);
      // A lone CR may be the start of an empty line.
      if (input.length === 0 || (input.length === 1 && input[0] === 0x0d)) break;
      const taken = takeBlock(input, this.#maxHeaderSize, "header block", RequestError);
      if (taken === undefined) {
        this.#checkPartial(input);
        break;
      }
      input = taken.rest;
      this.#scanned = 0;
      this.#readHead(taken.block);
    }
    this.#pending = input;
  }

  /**
   * An incomplete head: a bare CR or LF, or first bytes that cannot start a request line, are refused before
   * the rest comes. Each byte is looked at once, however the head is cut.
   */
  #checkPartial(input: Buffer): void {
    for (let at = this.#scanned; at < input.length; at++) {
      const code = input[at]!;
      if (this.#heads === 0 && this.#firstLine !== "checked") {
        if (this.#firstLine === "method") {
          if (TOKEN[code] !== 1 && (at === 0 || code !== 0x20)) throw new RequestError("not HTTP: no method", true);
          if (code === 0x20) this.#firstLine = "rest";
        } else if (isLineBreak(code)) {
          this.#checkStart(input.toString("latin1", 0, at));
          this.#firstLine = "checked";
        }
      }
      const previous = at === 0 ? 0 : input[at - 1]!;
      if ((code === 0x0a && previous !== 0x0d) || (previous === 0x0d && code !== 0x0a)) throw new RequestError("bare CR or LF in the header block");
    }
    this.#scanned = input.length;
  }

  /** The connection's first bytes, from their complete first line on: not HTTP unless the line starts as `method SP` and names `HTTP/`. */
  #checkStart(text: string): void {
    let method = 0;
    while (method < text.length && TOKEN[text.charCodeAt(method)] === 1) method++;
    if (method === 0 || text.charCodeAt(method) !== 0x20) throw new RequestError("not HTTP: no method", true);
    let lineEnd = method;
    while (lineEnd < text.length && !isLineBreak(text.charCodeAt(lineEnd))) lineEnd++;
    if (!text.slice(0, lineEnd).includes(" HTTP/")) throw new RequestError("not HTTP: no HTTP version", true);
  }

  #readHead(block: string): void {
    let lineEnd = block.indexOf("\r\n");
    if (lineEnd < 0) lineEnd = block.length;
    if (this.#heads === 0) this.#checkStart(block);
    const line = block.slice(0, lineEnd);
    const parts = REQUEST_LINE.exec(line);
    if (parts === null) {
      for (let at = 0; at < line.length; at++) if (isLineBreak(line.charCodeAt(at))) throw new RequestError("bare CR or LF in the request line");
      throw new RequestError("invalid request line");
    }
    const version = `${parts[3]}.${parts[4]}`;
    if (version !== "1.1" && version !== "1.0") throw new RequestError(`HTTP version ${version}`);
    const fields: string[] = [];
    const framing = parseFieldLines(block, lineEnd + 2, "header block", fields, RequestError);
    const head: RequestHead = { method: parts[1]!, target: parts[2]!, version, fields, body: "none" };
    let length = 0;
    if (framing.transferEncoding !== undefined) {
      if (framing.contentLength.length > 0) throw new RequestError("both Transfer-Encoding and Content-Length");
      if (version === "1.0") throw new RequestError("Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: framing faulty)");
      // RFC 9112 §6.3 item 4: a request whose last coding is not chunked has no reliable end.
      if (!endsChunked(framing.transferEncoding, RequestError)) throw new RequestError("Transfer-Encoding does not end in chunked");
      head.body = "chunked";
    } else if (framing.contentLength.length > 0) {
      if (framing.contentLength.length > 1) throw new RequestError("more than one Content-Length line");
      length = contentLength(framing.contentLength, RequestError);
      if (length > 0) head.body = "length";
    }
    this.#heads++;
    if (head.body !== "none") this.#body = new BodyDecoder(head.body, length, this.#maxHeaderSize, RequestError);
    this.#sink.head(head);
    if (head.body === "none") this.#sink.end();
  }
}
