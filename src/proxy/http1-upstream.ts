/**
 * The upstream side of one proxied HTTP/1.1 client connection: one socket to
 * the client's original destination (opened at the first forwarded request,
 * again when the server closed it), requests written on it one at a time in
 * the order given, each response read by http1-response.ts. Lighter than
 * Node's HTTP client by the agent, request and message objects it builds per
 * request, which cost the proxy about twice its own work. A request that
 * asked to switch protocols and got its 101 takes the socket with it: the
 * connection carries no more requests.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { ResponseReader } from "./http1-response.ts";
import type { ResponseHead } from "./http1-response.ts";

/** What a forwarded request hears of its response. */
export interface ExchangeSink {
  head(head: ResponseHead): void;
  /** Body bytes of one read from the upstream, in order; the array is the sink's to keep. */
  data(chunks: Buffer[]): void;
  /** The response ended; `chunks`: its last body bytes (of the read that ended it); `trailers`: a raw header list. */
  end(chunks: Buffer[], trailers: string[]): void;
  /** The exchange failed; `answered`: the response head was already given to {@link head}. */
  fail(error: Error, answered: boolean): void;
}

/** A request that asks to switch protocols: which one, and who takes the socket when the server agrees. */
export interface ExchangeUpgrade {
  /** The protocol name, lower case. */
  protocol: string;
  /** The 101 came: `socket` is the caller's from now on (no listener of this file left on it); `rest`: what followed the 101. */
  switched(head: ResponseHead, socket: Socket, rest: Buffer): void;
}

/** One request to forward. */
export interface Exchange {
  method: string;
  /** Request line and field lines, ending with the empty line. */
  head: string;
  /** The body to stream after the head, `chunked` or as it comes (its length is in the head); none when undefined. */
  body?: Readable;
  chunked: boolean;
  sink: ExchangeSink;
  upgrade?: ExchangeUpgrade;
}

/** The exchange on the wire: its request written or being written, its response awaited or being read. */
interface InFlight {
  exchange: Exchange;
  answered: boolean;
  bodyDone: boolean;
  stopBody: () => void;
}

const LAST_CHUNK = "0\r\n\r\n";

/** The upstream connection of one client connection. */
export class UpstreamConnection {
  readonly #open: () => Promise<Socket>;
  readonly #maxHeaderSize: number;
  readonly #queue: Exchange[] = [];
  #socket: Socket | undefined;
  /** Reads the responses of {@link #socket}; a new one per socket. */
  #reader: ResponseReader | undefined;
  #current: InFlight | undefined;
  /** Body bytes of the read being parsed, handed over once the read is parsed. */
  #chunks: Buffer[] = [];
  /** Removes this file's listeners from {@link #socket}. */
  #release: () => void = () => {};
  #destroyed = false;

  constructor(open: () => Promise<Socket>, maxHeaderSize: number) {
    this.#open = open;
    this.#maxHeaderSize = maxHeaderSize;
  }

  /** Queues a request; it is written once the responses before it have ended. */
  send(exchange: Exchange): void {
    this.#queue.push(exchange);
    if (this.#current === undefined) this.#next();
  }

  /**
   * Forgets a request whose client will not take its answer (gone, or its
   * body was cut): dropped from the queue, or, when on the wire, the upstream
   * connection is closed (its framing is lost).
   */
  cancel(exchange: Exchange): void {
    const index = this.#queue.indexOf(exchange);
    if (index >= 0) this.#queue.splice(index, 1);
    if (this.#current?.exchange !== exchange) return;
    this.#current.stopBody();
    this.#current = undefined;
    this.#dropSocket();
    this.#next();
  }

  /** Stops reading responses (the client is slower than the server). */
  pause(): void {
    this.#socket?.pause();
  }

  /** Reads responses again. */
  resume(): void {
    this.#socket?.resume();
  }

  /** Closes the upstream connection; queued requests are dropped unanswered. */
  destroy(): void {
    this.#destroyed = true;
    this.#queue.length = 0;
    this.#current?.stopBody();
    this.#current = undefined;
    this.#dropSocket();
  }

  #next(): void {
    const exchange = this.#queue.shift();
    if (exchange === undefined || this.#destroyed) return;
    const current: InFlight = { exchange, answered: false, bodyDone: exchange.body === undefined, stopBody: () => {} };
    this.#current = current;
    if (this.#socket !== undefined) {
      this.#write(this.#socket, this.#reader!, current);
      return;
    }
    this.#open().then(
      (socket) => {
        if (this.#current !== current) {
          socket.destroy();
          return;
        }
        this.#write(socket, this.#adopt(socket), current);
      },
      (error: unknown) => this.#broken(current, error instanceof Error ? error : new Error(String(error))),
    );
  }

  #adopt(socket: Socket): ResponseReader {
    const reader = new ResponseReader(this.#maxHeaderSize);
    this.#socket = socket;
    this.#reader = reader;
    socket.setNoDelay(true);
    const onData = (bytes: Buffer) => this.#received(socket, bytes);
    const onEnd = () => this.#ended(socket);
    const onError = (error: Error) => this.#lost(socket, error);
    // Every upstream socket closes in the end, most after they were dropped: the error (and its stack) only when it fails an exchange.
    const onClose = () => this.#lost(socket);
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
    socket.on("close", onClose);
    this.#release = () => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    return reader;
  }

  #write(socket: Socket, reader: ResponseReader, current: InFlight): void {
    const { exchange } = current;
    reader.expect(exchange.method, {
      head: (head) => {
        current.answered = true;
        exchange.sink.head(head);
      },
      data: (chunk) => this.#chunks.push(chunk),
      end: (trailers, reusable) => this.#finished(current, trailers, reusable),
    }, exchange.upgrade && { protocol: exchange.upgrade.protocol, switched: (head, rest) => this.#switched(socket, current, head, rest) });
    socket.write(exchange.head, "latin1");
    const body = exchange.body;
    if (body === undefined) return;
    const onData = (chunk: Buffer) => {
      let flushed: boolean;
      if (exchange.chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, "latin1");
        socket.write(chunk);
        flushed = socket.write("\r\n", "latin1");
        socket.uncork();
      } else flushed = socket.write(chunk);
      if (!flushed) body.pause();
    };
    const onDrain = () => body.resume();
    const onEnd = () => {
      current.stopBody();
      current.bodyDone = true;
      if (exchange.chunked) socket.write(LAST_CHUNK, "latin1");
    };
    current.stopBody = () => {
      body.off("data", onData);
      body.off("end", onEnd);
      socket.off("drain", onDrain);
    };
    body.on("data", onData);
    body.on("end", onEnd);
    socket.on("drain", onDrain);
  }

  #received(socket: Socket, bytes: Buffer): void {
    if (socket !== this.#socket) return;
    const current = this.#current;
    try {
      this.#reader!.push(bytes);
    } catch (error) {
      this.#broken(current, error as Error);
      return;
    }
    // The body bytes of one read go to the client in one write.
    if (this.#chunks.length > 0 && current !== undefined && this.#current === current) {
      const chunks = this.#chunks;
      this.#chunks = [];
      current.exchange.sink.data(chunks);
    }
  }

  #finished(current: InFlight, trailers: string[], reusable: boolean): void {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#current = undefined;
    // A request body the server did not wait for leaves the connection's framing undone.
    if (!reusable || !current.bodyDone) {
      current.stopBody();
      this.#dropSocket();
    }
    current.exchange.sink.end(chunks, trailers);
    this.#next();
  }

  /** The server switched protocols: the socket goes to the exchange, and this connection is done. */
  #switched(socket: Socket, current: InFlight, head: ResponseHead, rest: Buffer): void {
    this.#release();
    this.#socket = undefined;
    this.#reader = undefined;
    this.#current = undefined;
    this.#destroyed = true;
    this.#queue.length = 0;
    current.exchange.upgrade!.switched(head, socket, rest);
  }

  /** The server closed its side: ends a body delimited by the close; the connection is not used again. */
  #ended(socket: Socket): void {
    if (socket !== this.#socket) return;
    const current = this.#current;
    try {
      this.#reader!.close();
    } catch (error) {
      this.#broken(current, error as Error);
      return;
    }
    if (socket === this.#socket) this.#dropSocket();
  }

  #lost(socket: Socket, error?: Error): void {
    if (socket !== this.#socket) return;
    this.#broken(this.#current, error ?? new Error("upstream connection closed"));
  }

  /** The connection cannot be read any more: it is closed, and the exchange on it fails. */
  #broken(current: InFlight | undefined, error: Error): void {
    this.#dropSocket();
    if (current === undefined || this.#current !== current) return;
    current.stopBody();
    this.#current = undefined;
    this.#chunks = [];
    // The client connection closes on a failed exchange: what is queued behind it goes with it.
    this.#queue.length = 0;
    current.exchange.sink.fail(error, current.answered);
  }

  #dropSocket(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#reader = undefined;
    socket?.destroy();
  }
}
