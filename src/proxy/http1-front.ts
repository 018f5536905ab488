/**
 * The proxy's HTTP/1.1 side, on the client's socket itself: requests are read
 * by the proxy's own strict reader (http1-request.ts, the same message reading
 * as the upstream's responses), and every answer's head is written here. It
 * refuses what the reader refuses (bare CR or LF, obs-fold, whitespace before
 * a colon, control bytes, Content-Length with Transfer-Encoding, several
 * Content-Length lines, a Transfer-Encoding not ending in chunked or in
 * HTTP/1.0, bad chunk framing, framing fields in trailers, versions other than
 * 1.0 and 1.1, header blocks over maxHeaderSize or slower than headersTimeout),
 * and on top of it what a server could read another way (http-request.ts: two
 * Host lines, an absolute-form target to another host, paths that cannot be
 * normalized; here: a Connection option naming a framing field, CONNECT).
 *
 * Every malformed request gets 400 and the connection is closed (after it the
 * framing of what follows cannot be trusted); bytes that are not HTTP at all
 * (no method on the first request line) close the connection without an
 * answer. A refused request gets 403 `Access denied` (421 `Misdirected
 * Request` inside a terminated connection for a host its rules do not name)
 * and the connection stays usable. Allowed requests go upstream, in order,
 * over one upstream connection per client connection (opened again if the
 * server closes it), bodies streamed both ways with backpressure and framed
 * anew: a request's chunks are chunked again without their extensions and its
 * trailer section dropped (the rules never saw it); a response keeps its
 * length, its chunks and trailers (re-chunked), and a body that only the close
 * delimits (or chunks, to an HTTP/1.0 client) is passed on with the connection
 * closed after it. Answers
 * go out in request order, whatever order they are ready in. Persistence
 * follows RFC 9112 §9.3 (HTTP/1.1 unless `close`, HTTP/1.0 only with
 * `keep-alive`).
 *
 * A request that asks to switch protocols (upgrade-request.ts) on a connection
 * with no answer due stops the reader after its head: it is judged as any
 * request, forwarded with its upgrade fields if it asks for WebSocket, without
 * them otherwise. A 101 from the server switching to WebSocket is passed on and
 * the two sockets spliced (splice.ts); any other answer is passed on and the
 * reader goes on. Until the answer's head, the client may send nothing: it
 * cannot know yet whether what it sends would be HTTP or WebSocket, so neither
 * can the proxy (400, close). One asked for behind requests still unanswered
 * gets 400 and the connection closes.
 *
 * @module
 */
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { httpRequestView } from "../policy/http-request.ts";
import type { HttpRequestView } from "../policy/http-rule.ts";
import { endToEndFields, framingFieldNamedByConnection, readFieldLines } from "./hop-by-hop.ts";
import type { FieldLines } from "./hop-by-hop.ts";
import { RequestError, RequestReader } from "./http1-request.ts";
import type { RequestHead } from "./http1-request.ts";
import type { ResponseHead } from "./http1-response.ts";
import { UpstreamConnection } from "./http1-upstream.ts";
import type { Exchange } from "./http1-upstream.ts";
import type { ConnectionInfo, HttpFlowLogEntry, HttpFrontOptions, HttpVerdict } from "./http-front-options.ts";
import { HTTP_FRONT_DEFAULTS, refusalOf } from "./http-front-options.ts";
import { judgeSafely } from "./safe-judge.ts";
import { resetSocket, spliceSockets } from "./splice.ts";
import { asksUpgrade, upgradeAsk, WEBSOCKET } from "./upgrade-request.ts";

/** The HTTP/1.1 server of the proxy; connections are handed to it, it never listens. */
export interface Http1Front {
  /** Serves a client connection whose first bytes were already read (to tell HTTP/1.1 from HTTP/2). */
  serve(socket: Socket, firstBytes: Buffer, connection: ConnectionInfo): void;
  /** Closes every connection it serves. */
  close(): void;
}

type Log = (entry: Omit<HttpFlowLogEntry, "protocol">) => void;

/** The settings every connection of one front end shares. */
interface Shared {
  options: HttpFrontOptions;
  maxHeaderSize: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  log: Log;
  /** Sockets taken from the front end: spliced (with their upstream). */
  detached: Set<Socket>;
}

/** The answer to one request: written when every answer before it is, held until then. */
interface Answer {
  held: (string | Buffer)[];
  /** Something of it is written or held (a head): it can no longer be replaced by a 400. */
  started: boolean;
  done: boolean;
  /** The connection ends after it. */
  closes: boolean;
  /** Hears that it has been written whole. */
  written?: () => void;
}

/** One request read from the client. */
interface Request {
  head: RequestHead;
  lines: FieldLines;
  /** The connection persists after it (RFC 9112 §9.3). */
  keepAlive: boolean;
  answer: Answer;
  /** Its body, for the upstream; undefined when it has none or is not forwarded (its bytes are dropped). */
  body: Readable | undefined;
  complete: boolean;
  exchange?: Exchange;
}

/** A request judged and allowed, and what the flow log says of it. */
interface Admitted {
  view: HttpRequestView;
  query: string | undefined;
  verdict: HttpVerdict;
  logged: Omit<HttpFlowLogEntry, "protocol" | "verdict" | "status">;
}

const TEXT_PLAIN = "text/plain; charset=utf-8";
const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";
const LAST_CHUNK = "0\r\n";
const CRLF = "\r\n";

let dateSecond = -1;
let dateText = "";
/** The Date field's value (RFC 9110 §6.6.1), formatted once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** A whole answer of the proxy's own, plain text. */
function ownAnswer(status: string, body: string, connection: "close" | "keep-alive" | undefined): string {
  const option = connection === undefined ? "" : `Connection: ${connection}\r\n`;
  return `HTTP/1.1 ${status}\r\nDate: ${httpDate()}\r\nContent-Type: ${TEXT_PLAIN}\r\nContent-Length: ${body.length}\r\n${option}\r\n${body}`;
}

/**
 * A raw field list (`[name, value, ...]`) as field lines, each `name: value` CRLF, as received (the readers
 * checked every name and value); `without`: a lower-case name left out.
 */
function serializeFields(fields: readonly string[], without?: string): string {
  let text = "";
  for (let index = 0; index < fields.length; index += 2) {
    const name = fields[index]!;
    if (without !== undefined && name.length === without.length && name.toLowerCase() === without) continue;
    text += `${name}: ${fields[index + 1]}\r\n`;
  }
  return text;
}

/** Sums the lengths of buffers. */
function byteLength(chunks: readonly Buffer[]): number {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  return length;
}

/** One client connection: its reader, the answers due in order, its upstream connection. */
class ClientConnection {
  readonly socket: Socket;
  readonly #shared: Shared;
  readonly #info: ConnectionInfo;
  readonly #upstream: UpstreamConnection;
  readonly #reader: RequestReader;
  readonly #answers: Answer[] = [];
  /** The request whose head or body is being read. */
  #current: Request | undefined;
  /** An upgrade request read: served once the read that carried it is over. */
  #upgrade: Request | undefined;
  /** An upgrade request waiting for its answer, and the bytes received since its answer's head; undefined when none waits. */
  #upgrading: { request: Request; held: Buffer[] } | undefined;
  /** What the client sends is no longer read: the connection failed, closes, or was spliced. */
  #ignoring = false;
  /** The client closed its sending side: the connection ends once the answers due are written. */
  #clientEnded = false;
  /** The client's reads are paused because a request body waits for the upstream. */
  #bodyPaused = false;
  /** The connection switched to WebSocket: its sockets are joined, and its ends are the peers' to choose. */
  #spliced = false;
  /** When the deadline check first saw the proxy's side of the connection ended. */
  #endedAt: number | undefined;
  /** What the deadline check saw last: the request under way, whether idle, since when. */
  #seen = { request: -1, idle: true, since: 0 };

  constructor(socket: Socket, info: ConnectionInfo, shared: Shared) {
    this.socket = socket;
    this.#shared = shared;
    this.#info = info;
    this.#upstream = new UpstreamConnection(() => shared.options.connectUpstream(info), shared.maxHeaderSize);
    this.#reader = new RequestReader(shared.maxHeaderSize, {
      head: (head) => this.#onHead(head),
      data: (chunk) => this.#onBody(chunk),
      end: () => this.#onComplete(),
    });
  }

  /** Bytes from the client. */
  received(bytes: Buffer): void {
    if (this.#ignoring) return;
    if (this.#upgrading !== undefined) return this.#whileUpgrading(bytes);
    try {
      this.#reader.push(bytes);
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      this.#unreadable(error);
      return;
    }
    const upgrade = this.#upgrade;
    if (upgrade !== undefined) {
      this.#upgrade = undefined;
      this.#serveUpgrade(upgrade);
    }
  }

  /** The client closed its sending side. */
  ended(): void {
    if (this.#upgrading !== undefined) {
      // A client that half-closes before the switch is gone: no answer can follow.
      this.socket.destroy();
      return;
    }
    if (this.#ignoring) return;
    if (this.#reader.state !== "idle") {
      this.#unreadable(new RequestError("the connection closed inside a request"));
      return;
    }
    this.#clientEnded = true;
    this.#ignoring = true;
    if (this.#answers.length === 0) this.socket.end();
  }

  /** The socket closed: nothing more is sent upstream. */
  closed(): void {
    this.#ignoring = true;
    this.#upstream.destroy();
  }

  /** Enforces the header, request and keep-alive deadlines, and how long a client may keep a connection the proxy ended; `now` in ms. */
  checkDeadlines(now: number): void {
    if (this.socket.destroyed || this.#upgrading !== undefined || this.#spliced) return;
    if (this.socket.writableEnded) {
      // The client has the header timeout to read the last answer and close; it is not waited for longer.
      this.#endedAt ??= now;
      if (now - this.#endedAt >= this.#shared.headersTimeoutMs) this.socket.destroy();
      return;
    }
    if (this.#ignoring) return;
    const state = this.#reader.state;
    const request = this.#reader.requests + (state === "head" ? 1 : 0);
    const idle = state === "idle" && this.#answers.length === 0;
    const seen = this.#seen;
    if (seen.request !== request || seen.idle !== idle) {
      this.#seen = { request, idle, since: now };
      return;
    }
    const elapsed = now - seen.since;
    const shared = this.#shared;
    if (idle) {
      if (elapsed >= shared.keepAliveTimeoutMs) this.socket.destroy();
    } else if (state === "head" && elapsed >= shared.headersTimeoutMs) {
      this.#unreadable(new RequestError(`headers timeout: the header block did not complete within ${shared.headersTimeoutMs} ms`));
    } else if (state !== "idle" && shared.requestTimeoutMs > 0 && elapsed >= shared.requestTimeoutMs) {
      this.#unreadable(new RequestError(`request timeout: the request did not complete within ${shared.requestTimeoutMs} ms`));
    }
  }

  #onHead(head: RequestHead): void {
    const lines = readFieldLines(head.fields);
    const keepAlive = head.version === "1.1" ? !lines.connection.has("close") : lines.connection.has("keep-alive");
    const answer: Answer = { held: [], started: false, done: false, closes: !keepAlive };
    const request: Request = { head, lines, keepAlive, answer, body: undefined, complete: false };
    this.#current = request;
    this.#answers.push(answer);
    if (head.method === "CONNECT") return this.#malformed(request, "CONNECT (authority form) is not proxied");
    if (asksUpgrade(lines)) {
      if (this.#answers.length > 1) return this.#malformed(request, "Upgrade request behind requests not yet answered");
      // What follows its head is neither read nor judged until the answer says what it is.
      this.#reader.pause();
      this.#upgrade = request;
      return;
    }
    const expectation = this.#expectation(request);
    if (expectation === "failed") return;
    const admitted = this.#admit(request, expectation === "continue");
    if (admitted === undefined) return;
    if (expectation === "continue") this.#write(answer, [CONTINUE], false);
    this.#forward(request, admitted);
  }

  #onBody(chunk: Buffer): void {
    const body = this.#current?.body;
    if (body === undefined) return;
    if (!body.push(chunk) && !this.#bodyPaused) {
      // The upstream takes the body slower than the client sends it: stop reading the client until it caught up.
      this.#bodyPaused = true;
      this.socket.pause();
    }
  }

  #onComplete(): void {
    const request = this.#current!;
    this.#current = undefined;
    request.complete = true;
    request.body?.push(null);
    if (!request.keepAlive) {
      // Nothing after a request that ends the connection is read (RFC 9112 §9.6).
      this.#reader.pause();
      this.#ignoring = true;
    }
  }

  /** Resumes the client's reads once a waiting body is taken. */
  #bodyRead(): void {
    if (!this.#bodyPaused) return;
    this.#bodyPaused = false;
    this.socket.resume();
  }

  /** `Expect` (RFC 9110 §10.1.1): 100-continue is answered once the request is allowed; any other expectation gets 417. */
  #expectation(request: Request): "none" | "continue" | "failed" {
    const { head, lines } = request;
    if (head.version !== "1.1" || !lines.lower.includes("expect")) return "none";
    const values: string[] = [];
    for (let line = 0; line < lines.lower.length; line++) if (lines.lower[line] === "expect") values.push(lines.raw[2 * line + 1]!.toLowerCase());
    if (values.every((value) => value === "100-continue")) return "continue";
    // The client may send its body or not: after the answer nobody knows where the next request starts.
    this.#shared.log({ verdict: "malformed", connection: this.#info, method: head.method, path: head.target, status: 417, reason: `Expect: ${values.join(", ")} is not supported` });
    this.#refuse(request, ownAnswer("417 Expectation Failed", "Expectation Failed", "close"), true);
    return "failed";
  }

  /** Checks and judges a request: answers 400 or 403 itself, else says what to forward. */
  #admit(request: Request, expectsContinue: boolean): Admitted | undefined {
    const { head, lines } = request;
    const framing = framingFieldNamedByConnection(lines);
    if (framing !== undefined) return void this.#malformed(request, `Connection names ${framing}`);
    const fields: [string, string][] = [];
    for (let index = 0; index + 1 < head.fields.length; index += 2) fields.push([head.fields[index]!, head.fields[index + 1]!]);
    const accepted = httpRequestView({ method: head.method, target: head.target, fields });
    if (!accepted.ok) return void this.#malformed(request, accepted.reason);
    const { view, query } = accepted;
    const verdict = judgeSafely(this.#shared.options.judge, view, this.#info);
    const logged = { connection: this.#info, method: head.method, host: view.host, path: view.path, policy: verdict.policy, rule: verdict.rule, ...(verdict.reason !== undefined && { reason: verdict.reason }) };
    if (!verdict.allow) {
      const refusal = refusalOf(verdict);
      this.#shared.log({ verdict: refusal.verdict, status: refusal.status, ...logged });
      // A client that waits for 100 Continue may send its body or not (RFC 9110 §10.1.1): after the refusal nobody knows where the next request starts.
      const close = !request.keepAlive || (expectsContinue && head.body !== "none");
      this.#refuse(request, ownAnswer(`${refusal.status} ${refusal.reasonPhrase}`, refusal.body, close ? "close" : head.version === "1.0" ? "keep-alive" : undefined), close);
      return undefined;
    }
    return { view, query, verdict, logged };
  }

  /** Answers a request the proxy does not forward; its body, if any, is read and dropped. */
  #refuse(request: Request, text: string, closes: boolean): void {
    request.answer.closes = closes;
    this.#write(request.answer, [text], true);
  }

  /** 400 and close for a request that could be read more than one way. */
  #malformed(request: Request, reason: string): void {
    this.#shared.log({ verdict: "malformed", connection: this.#info, method: request.head.method, path: request.head.target, status: 400, reason });
    this.#stopReading();
    this.#refuse(request, ownAnswer("400 Bad Request", "Bad Request", "close"), true);
  }

  /**
   * The client's bytes cannot be read on (malformed, cut, too slow): a request whose body they cut is
   * dropped (its exchange cancelled); once the answers before it are written, 400 and close. An answer already
   * under way for the cut request cannot be followed by a 400: the connection is closed at once. The first
   * bytes of a connection that are not HTTP at all are closed without an answer.
   */
  #unreadable(error: RequestError): void {
    this.#stopReading();
    if (error.notHttp && this.#reader.requests === 0) {
      this.#shared.log({ verdict: "malformed", connection: this.#info, status: 0, reason: error.message });
      this.socket.destroy();
      return;
    }
    this.#shared.log({ verdict: "malformed", connection: this.#info, status: 400, reason: error.message });
    const cut = this.#current;
    this.#current = undefined;
    if (cut?.exchange !== undefined && !cut.complete && !cut.answer.done) {
      if (cut.answer.started) {
        this.socket.destroy();
        return;
      }
      this.#upstream.cancel(cut.exchange);
      this.#answers.splice(this.#answers.indexOf(cut.answer), 1);
    }
    const answer: Answer = { held: [], started: true, done: false, closes: true };
    this.#answers.push(answer);
    this.#write(answer, [ownAnswer("400 Bad Request", "Bad Request", "close")], true);
  }

  #stopReading(): void {
    this.#ignoring = true;
    this.#reader.pause();
    this.#upgrade = undefined;
    this.#upgrading = undefined;
    this.#bodyRead();
  }

  /**
   * Forwards an admitted request; `upgrade`: it asks for WebSocket (the Upgrade field as received), and who
   * takes the upstream socket when the server agrees.
   */
  #forward(request: Request, { view, query, verdict, logged }: Admitted, upgrade?: { value: string; switched(head: ResponseHead, upstream: Socket, rest: Buffer): void }): Exchange {
    const { head, lines, answer } = request;
    const onStatus = (status: number) => {
      if (verdict.audit) this.#shared.log({ verdict: "audited", status, ...logged });
    };
    // RFC 9110 §7.6.3: a proxy adds itself to Via.
    let text = `${head.method} ${view.path}${query === undefined ? "" : `?${query}`} HTTP/1.1\r\n${serializeFields(endToEndFields(lines))}`;
    // The upgrade fields are hop-by-hop: the one upgrade the proxy honors is asked of the next hop anew.
    if (upgrade) text += `Connection: Upgrade\r\nUpgrade: ${upgrade.value}\r\n`;
    text += `Via: ${head.version} palisade\r\n\r\n`;
    if (head.body !== "none") request.body = new Readable({ read: () => this.#bodyRead() });
    /** The response's head, held until its first body bytes (or its end) go out with it; how its body is framed to the client. */
    let pendingHead: string | undefined;
    let chunked = false;
    const sent: Exchange = {
      method: head.method,
      head: text,
      // Chunks go upstream framed anew; a length is forwarded as received and was checked.
      chunked: head.body === "chunked",
      ...(request.body !== undefined && { body: request.body }),
      ...(upgrade && {
        upgrade: {
          protocol: WEBSOCKET,
          switched: (upstreamHead, upstream, rest) => {
            onStatus(upstreamHead.status);
            upgrade.switched(upstreamHead, upstream, rest);
          },
        },
      }),
      sink: {
        head: (upstreamHead) => {
          onStatus(upstreamHead.status);
          answer.started = true;
          chunked = upstreamHead.body === "chunked" && head.version === "1.1";
          pendingHead = this.#responseHead(request, upstreamHead);
        },
        data: (chunks) => {
          const parts = this.#bodyParts(pendingHead, chunks, chunked);
          pendingHead = undefined;
          if (!this.#write(answer, parts, false)) {
            // The client reads slower than the server writes: stop reading the server until it caught up.
            this.#upstream.pause();
            this.socket.once("drain", () => this.#upstream.resume());
          }
        },
        end: (chunks, trailers) => {
          const parts = this.#bodyParts(pendingHead, chunks, chunked);
          if (chunked) parts.push(`${LAST_CHUNK}${serializeFields(trailers)}\r\n`);
          this.#write(answer, parts, true);
        },
        fail: (error, answered) => {
          if (answer.done || this.socket.destroyed) return;
          if (answered) {
            this.socket.destroy();
            return;
          }
          this.#shared.log({ verdict: "upstream-failed", status: 502, ...logged, reason: error.message });
          this.#stopReading();
          answer.closes = true;
          this.#write(answer, [ownAnswer("502 Bad Gateway", "Bad Gateway", "close")], true);
        },
      },
    };
    request.exchange = sent;
    this.#upstream.send(sent);
    return sent;
  }

  /** The head of an upstream response for the client: end-to-end fields, the framing the client can read, Date, Via. */
  #responseHead(request: Request, upstreamHead: ResponseHead): string {
    const { answer } = request;
    const lines = readFieldLines(upstreamHead.fields);
    // An HTTP/1.0 client cannot read chunks: the body goes as it comes, and the close ends it.
    const unchunked = upstreamHead.body === "chunked" && request.head.version === "1.0";
    if (upstreamHead.body === "close" || unchunked) answer.closes = true;
    let text = `HTTP/1.1 ${upstreamHead.status} ${upstreamHead.reason}\r\n${serializeFields(endToEndFields(lines), unchunked ? "transfer-encoding" : undefined)}`;
    // RFC 9110 §6.6.1: a response forwarded without a Date gets one.
    if (!lines.lower.includes("date")) text += `Date: ${httpDate()}\r\n`;
    if (answer.closes) text += "Connection: close\r\n";
    else if (request.head.version === "1.0") text += "Connection: keep-alive\r\n";
    return `${text}Via: ${upstreamHead.version} palisade\r\n\r\n`;
  }

  /** What to write for body bytes of a response: its head first if not yet written, the bytes as one chunk if chunked. */
  #bodyParts(head: string | undefined, chunks: Buffer[], chunked: boolean): (string | Buffer)[] {
    const parts: (string | Buffer)[] = head === undefined ? [] : [head];
    if (!chunked) {
      for (const chunk of chunks) parts.push(chunk);
      return parts;
    }
    const length = byteLength(chunks);
    // A chunk of size 0 would end the body.
    if (length === 0) return parts;
    parts.push(`${length.toString(16)}\r\n`);
    for (const chunk of chunks) parts.push(chunk);
    parts.push(CRLF);
    return parts;
  }

  /**
   * Writes parts of an answer, or holds them while answers before it are due; `end`: the answer is complete.
   * Returns false when the socket asks the writer to wait for `drain`.
   */
  #write(answer: Answer, parts: (string | Buffer)[], end: boolean): boolean {
    answer.done ||= end;
    if (answer !== this.#answers[0]) {
      for (const part of parts) answer.held.push(part);
      return true;
    }
    const flushed = this.#send(parts);
    if (end) this.#next();
    return flushed;
  }

  #send(parts: readonly (string | Buffer)[]): boolean {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return true;
    if (parts.length === 1) return socket.write(parts[0]!, "latin1");
    socket.cork();
    let flushed = true;
    for (const part of parts) flushed = socket.write(part, "latin1");
    socket.uncork();
    return flushed;
  }

  /** The first answer is written whole: the connection ends after it, or the next answer's held parts go out. */
  #next(): void {
    for (;;) {
      const answer = this.#answers.shift()!;
      if (answer.closes) {
        this.#stopReading();
        this.#answers.length = 0;
        this.socket.end();
        return;
      }
      answer.written?.();
      const next = this.#answers[0];
      if (next === undefined) {
        if (this.#clientEnded) this.socket.end();
        return;
      }
      if (next.held.length > 0) {
        const held = next.held;
        next.held = [];
        this.#send(held);
      }
      if (!next.done) return;
    }
  }

  /**
   * Serves a request that asks to switch protocols (no answer was due before it). Until the answer's head, a
   * byte from the client is refused (400, close); after it, what the client sends is held for the reader,
   * which goes on once the answer is written, or the connection is spliced to the upstream after a 101.
   */
  #serveUpgrade(request: Request): void {
    const ask = upgradeAsk(request.lines, request.head.version);
    if (ask.kind === "refused") return this.#malformed(request, ask.reason);
    if (this.#reader.buffered > 0) return this.#malformed(request, "bytes sent after an Upgrade request before its answer");
    this.#upgrading = { request, held: [] };
    request.answer.written = () => {
      if (this.#upgrading === undefined) return;
      // The answer was not a switch: the connection goes on as HTTP/1.1, with what the client sent since.
      const { held } = this.#upgrading;
      this.#upgrading = undefined;
      this.socket.resume();
      this.#reader.resume();
      if (held.length > 0) this.received(Buffer.concat(held));
    };
    const admitted = this.#admit(request, false);
    if (admitted === undefined) return;
    if (ask.kind === "ignored") {
      this.#forward(request, admitted);
      return;
    }
    this.#forward(request, admitted, {
      value: ask.value,
      switched: (upstreamHead, upstream, rest) => this.#switch(upstreamHead, upstream, rest, admitted.verdict),
    });
  }

  /** Bytes from the client while an upgrade request waits for its answer: before the answer's head they are refused. */
  #whileUpgrading(bytes: Buffer): void {
    const { request, held } = this.#upgrading!;
    if (request.answer.started) {
      held.push(bytes);
      this.socket.pause();
      return;
    }
    if (request.exchange !== undefined) this.#upstream.cancel(request.exchange);
    this.#malformed(request, "bytes sent after an Upgrade request before its answer");
  }

  /** The server switched to WebSocket: the 101 is passed on and the sockets spliced, their bytes counted under the upgrade request's verdict. */
  #switch(upstreamHead: ResponseHead, upstream: Socket, rest: Buffer, verdict: HttpVerdict): void {
    const { detached, options } = this.#shared;
    this.#stopReading();
    this.#spliced = true;
    this.#answers.length = 0;
    detached.add(this.socket);
    this.socket.once("close", () => detached.delete(this.socket));
    detached.add(upstream);
    upstream.once("close", () => detached.delete(upstream));
    options.upgraded?.(this.#info);
    const upstreamLines = readFieldLines(upstreamHead.fields);
    const fields = endToEndFields(upstreamLines);
    const upgradeField = upstreamHead.fields[2 * upstreamLines.lower.indexOf("upgrade") + 1]!;
    fields.push("Connection", "Upgrade", "Upgrade", upgradeField, "Via", `${upstreamHead.version} palisade`);
    this.socket.write(`HTTP/1.1 101 ${upstreamHead.reason}\r\n${serializeFields(fields)}\r\n`, "latin1");
    spliceSockets(this.socket, upstream, options.countPassedBytes?.(verdict.policy ?? "", verdict.rule ?? ""), { toClient: rest });
  }
}

export function createHttp1Front(options: HttpFrontOptions): Http1Front {
  const shared: Shared = {
    options,
    maxHeaderSize: options.maxHeaderSize ?? HTTP_FRONT_DEFAULTS.maxHeaderSize,
    headersTimeoutMs: options.headersTimeoutMs ?? HTTP_FRONT_DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? HTTP_FRONT_DEFAULTS.requestTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? HTTP_FRONT_DEFAULTS.keepAliveTimeoutMs,
    log: (entry) => options.flowLog({ protocol: "HTTP/1.1", ...entry }),
    detached: new Set(),
  };
  const connections = new Set<ClientConnection>();
  // One timer checks every connection's deadlines: no timer is set or cleared per request.
  const deadlines = setInterval(() => {
    const now = Date.now();
    for (const connection of connections) connection.checkDeadlines(now);
  }, options.timeoutCheckIntervalMs ?? HTTP_FRONT_DEFAULTS.timeoutCheckIntervalMs);
  deadlines.unref();

  return {
    serve(socket, firstBytes, info) {
      const connection = new ClientConnection(socket, info, shared);
      connections.add(connection);
      // Answers are still due after the client's FIN; the connection ends when they are written.
      socket.allowHalfOpen = true;
      socket.setNoDelay(true);
      socket.on("data", (bytes: Buffer) => connection.received(bytes));
      socket.on("end", () => connection.ended());
      socket.on("error", () => socket.destroy());
      socket.once("close", () => {
        connections.delete(connection);
        connection.closed();
      });
      if (firstBytes.length > 0) connection.received(firstBytes);
    },
    close() {
      clearInterval(deadlines);
      for (const connection of connections) connection.socket.destroy();
      connections.clear();
      for (const socket of shared.detached) resetSocket(socket);
      shared.detached.clear();
    },
  };
}
