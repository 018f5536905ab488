/**
 * Reads the responses of an HTTP/1.1 upstream connection, one per request
 * sent, strictly (RFC 9112): the status line, then the field lines and the
 * body as every HTTP/1.1 message is read (http1-message.ts), framed by the
 * rules of §6.3 for responses. The proxy frames each body anew for its client;
 * this reader only has to know where each response ends, and must never know
 * it differently from the server that sent it. So anything a peer could mean
 * two ways is an error: what http1-message.ts refuses, and here Content-Length
 * with Transfer-Encoding, Content-Length lines that disagree, Transfer-Encoding
 * in HTTP/1.0, bytes nobody asked for. A 1xx answer other than 101 is read
 * and dropped (the proxy answers `Expect: 100-continue` itself). A 101 is an
 * error unless the request asked to switch to the protocol the 101 names,
 * alone, in HTTP/1.1: then the reader stops, and what follows the 101 is the
 * new protocol's.
 *
 * @module
 */
import { BodyDecoder, contentLength, endsChunked, listElements, NO_BYTES, parseFieldLines, takeBlock } from "./http1-message.ts";
import type { BodyFraming, FramingLines } from "./http1-message.ts";

/** A status line and field lines, as received. */
export interface ResponseHead {
  /** "1.0" or "1.1". */
  version: string;
  status: number;
  reason: string;
  /** Field lines in order, names as received, as a raw header list: `[name, value, name, value, ...]`. */
  fields: string[];
  /** How the body is delimited; "none": the response has none (HEAD, 204, 304, a length of 0). */
  body: BodyFraming | "none";
}

/** What the reader reports for the response under way. */
export interface ResponseSink {
  head(head: ResponseHead): void;
  data(chunk: Buffer): void;
  /**
   * The response is complete; `trailers`: its trailer section as a raw
   * header list. `reusable`: the connection may carry the next request
   * (HTTP/1.1, no `Connection: close`, framed by length or chunks, no byte
   * beyond the response).
   */
  end(trailers: string[], reusable: boolean): void;
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

const STATUS_LINE = /^HTTP\/(1\.[01]) ([1-9]\d\d) ([\t\x20-\x7e\x80-\xff]*)$/;

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
  #body: BodyDecoder | undefined;
  #reusable = false;
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
    if (this.#body?.endsWithClose === true) {
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
        const taken = takeBlock(input, this.#maxHeaderSize, "header block", ResponseError);
        if (taken === undefined) {
          this.#pending = input;
          return;
        }
        input = taken.rest;
        const read = this.#readHead(taken.block);
        // A response without a body ends with its head.
        if (read === "complete") return this.#complete(this.#reusable, input);
        if (read === "switched") return this.#switch(input);
        continue;
      }
      const sink = this.#sink;
      const rest = this.#body!.decode(input, (chunk) => sink.data(chunk));
      if (rest === undefined) return;
      return this.#complete(this.#reusable, rest);
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
    const framing = parseFieldLines(block, statusEnd + 2, "header block", fields, ResponseError);
    const head: ResponseHead = { version: status[1]!, status: Number(status[2]), reason: status[3]!, fields, body: "none" };
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

  /** RFC 9112 §6.3: how the body of `head` is delimited (set on `head.body`); undefined when it has none. */
  #framing(head: ResponseHead, framing: FramingLines): BodyDecoder | undefined {
    this.#reusable = head.version === "1.1" && !(framing.connection.length > 0 && listElements(framing.connection).includes("close"));
    if (this.#method === "HEAD" || head.status === 204 || head.status === 304) return undefined;
    const lengths = framing.contentLength;
    if (framing.transferEncoding !== undefined) {
      if (lengths.length > 0) throw new ResponseError("both Transfer-Encoding and Content-Length");
      if (head.version === "1.0") throw new ResponseError("Transfer-Encoding in an HTTP/1.0 response");
      if (endsChunked(framing.transferEncoding, ResponseError)) return this.#decoder("chunked", 0, head);
      // A body whose coding is not chunked ends with the connection (§6.3 item 4 for responses).
      this.#reusable = false;
      return this.#decoder("close", 0, head);
    }
    if (lengths.length > 0) {
      const length = contentLength(lengths, ResponseError);
      return length === 0 ? undefined : this.#decoder("length", length, head);
    }
    this.#reusable = false;
    return this.#decoder("close", 0, head);
  }

  #decoder(framing: BodyFraming, length: number, head: ResponseHead): BodyDecoder {
    head.body = framing;
    return new BodyDecoder(framing, length, this.#maxHeaderSize, ResponseError);
  }

  /**
   * Ends the response under way. One request is sent at a time, so bytes
   * after a complete response were not asked for: they are dropped and the
   * connection is not reused.
   */
  #complete(reusable: boolean, rest: Buffer = NO_BYTES): void {
    const sink = this.#sink!;
    const trailers = this.#body?.trailers ?? [];
    this.#sink = undefined;
    this.#head = undefined;
    this.#body = undefined;
    sink.end(trailers, reusable && rest.length === 0);
  }
}
