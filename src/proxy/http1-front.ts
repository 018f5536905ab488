/**
 * The proxy's HTTP/1.1 side. Client connections are parsed by Node's own
 * llhttp in its strict mode (no lenient flags): it refuses Content-Length with
 * Transfer-Encoding, duplicate Content-Length, a Transfer-Encoding whose last
 * coding is not chunked, obs-fold, bare CR or LF, whitespace before a colon,
 * NUL and control bytes, chunk sizes that overflow, and header blocks over
 * maxHeaderSize. On top of it this file refuses what llhttp lets through but
 * a server could read another way (http-request.ts: two Host lines, an
 * absolute-form target to another host, paths that cannot be normalized; here:
 * Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1), HTTP versions other than 1.0
 * and 1.1, a Connection option naming a framing field, CONNECT).
 *
 * Every malformed request gets 400 and the connection is closed (after it the
 * framing of what follows cannot be trusted); bytes that are not HTTP at all
 * (no method on the first request line) close the connection without an
 * answer. A refused request gets 403 `Access denied` and the connection stays
 * usable. Allowed requests go upstream, in order, over one upstream connection
 * per client connection (opened again if the server closes it), bodies
 * streamed both ways.
 *
 * A request that asks to switch protocols (upgrade-request.ts) on a connection
 * with no answer due leaves Node's parser (its `upgrade` event) and is served
 * here: judged as any request, forwarded with its upgrade fields if it asks for
 * WebSocket, without them otherwise. A 101 from the server switching to
 * WebSocket is passed on and the two sockets spliced (splice.ts); any other
 * answer is passed on and the connection goes back to the parser. Until the
 * answer's head, the client may send nothing: it cannot know yet whether what
 * it sends would be HTTP or WebSocket, so neither can the proxy (400, close).
 * One asked for behind requests still unanswered gets 400 and the connection
 * closes.
 *
 * @module
 */
import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { httpRequestView } from "../policy/http-request.ts";
import type { HttpRequestView } from "../policy/http-rule.ts";
import { endToEndFields, framingFieldNamedByConnection, readFieldLines } from "./hop-by-hop.ts";
import type { FieldLines } from "./hop-by-hop.ts";
import { UpstreamConnection } from "./http1-upstream.ts";
import type { Exchange } from "./http1-upstream.ts";
import type { ResponseHead } from "./http1-response.ts";
import type { ConnectionInfo, HttpFlowLogEntry, HttpFrontOptions } from "./http-front-options.ts";
import { HTTP_FRONT_DEFAULTS } from "./http-front-options.ts";
import { judgeSafely } from "./safe-judge.ts";
import type { SafeVerdict } from "./safe-judge.ts";
import { resetSocket, spliceSockets } from "./splice.ts";
import { asksUpgrade, upgradeAsk, WEBSOCKET } from "./upgrade-request.ts";

/** The HTTP/1.1 server of the proxy; connections are handed to it, it never listens. */
export interface Http1Front {
  /** Serves a client connection whose first bytes were already read (to tell HTTP/1.1 from HTTP/2). */
  serve(socket: Socket, firstBytes: Buffer, connection: ConnectionInfo): void;
  /** Closes every connection it serves. */
  close(): void;
}

interface ConnectionState {
  connection: ConnectionInfo;
  upstream: UpstreamConnection;
  /** Requests the parser has delivered on this connection. */
  requests: number;
  /** Forwarded requests whose response has not ended, oldest first. */
  active: Forwarded[];
  /** The parser failed (malformed bytes, a timeout): a 400 follows the responses still due, then the connection closes. */
  failed: boolean;
  /** Responses to requests the parser delivered that have not finished: an upgrade is served only when there is none. */
  unanswered: Set<ServerResponse>;
  /** A response that closes the connection was written (400, 502). */
  closing: boolean;
}

/** A request judged and allowed, and what the flow log says of it. */
interface Admitted {
  lines: FieldLines;
  view: HttpRequestView;
  query: string | undefined;
  verdict: SafeVerdict;
  logged: Omit<HttpFlowLogEntry, "protocol" | "verdict" | "status">;
}

/** One forwarded request. */
interface Forwarded {
  request: IncomingMessage;
  response: ServerResponse;
  sent: Exchange;
}

const TEXT_PLAIN = "text/plain; charset=utf-8";
const BAD_REQUEST = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\r\nBad Request";

/** llhttp's error for a first line that does not start with a method: what is not HTTP fails there. */
const NOT_HTTP_CODES = new Set(["HPE_INVALID_METHOD", "HPE_INVALID_CONSTANT"]);

export function createHttp1Front(options: HttpFrontOptions): Http1Front {
  const server = http.createServer({
    insecureHTTPParser: false,
    // httpRequestView refuses a request without a host, HTTP/1.0 too, and logs why; Node's own check would answer unlogged.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    maxHeaderSize: options.maxHeaderSize ?? HTTP_FRONT_DEFAULTS.maxHeaderSize,
    headersTimeout: options.headersTimeoutMs ?? HTTP_FRONT_DEFAULTS.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs ?? HTTP_FRONT_DEFAULTS.requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? HTTP_FRONT_DEFAULTS.keepAliveTimeoutMs,
    connectionsCheckingInterval: options.timeoutCheckIntervalMs ?? HTTP_FRONT_DEFAULTS.timeoutCheckIntervalMs,
    // The bytes after an upgrade request are known to be HTTP only once it is answered: it is served apart from the parser.
    shouldUpgradeCallback: (request) => states.get(request.socket)?.unanswered.size === 0,
  });
  const states = new WeakMap<object, ConnectionState>();
  /** Sockets taken from the parser: being upgraded, or spliced (with their upstream). */
  const detached = new Set<Socket>();
  const log = (entry: Omit<HttpFlowLogEntry, "protocol">) => options.flowLog({ protocol: "HTTP/1.1", ...entry });

  function malformed(state: ConnectionState, request: IncomingMessage, response: ServerResponse, reason: string): void {
    state.closing = true;
    log({ verdict: "malformed", connection: state.connection, method: request.method, path: request.url, status: 400, reason });
    response.writeHead(400, { "content-type": TEXT_PLAIN, "content-length": "11", connection: "close" });
    response.end("Bad Request");
  }

  /**
   * After a parser failure: requests whose body the failure cut are dropped
   * (upstream aborted); once the complete ones before them are answered, 400
   * and close. A response already under way for a cut request cannot be
   * followed by a 400: the connection is closed at once.
   */
  function settleFailure(state: ConnectionState, socket: Duplex): void {
    for (const forwarded of [...state.active]) {
      if (forwarded.request.complete) continue;
      if (forwarded.response.headersSent) {
        socket.destroy();
        return;
      }
      state.upstream.cancel(forwarded.sent);
      state.active.splice(state.active.indexOf(forwarded), 1);
    }
    if (state.active.length === 0 && socket.writable) socket.end(BAD_REQUEST);
  }

  function onRequest(request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void {
    const state = states.get(request.socket);
    if (state === undefined) {
      request.socket.destroy();
      return;
    }
    state.requests++;
    state.unanswered.add(response);
    const answered = () => state.unanswered.delete(response);
    response.once("finish", answered);
    response.once("close", answered);
    // llhttp may still refuse this request's framing after handing it over, in the same parse: judge it once that parse is over.
    queueMicrotask(() => {
      if (state.failed && !request.complete) return;
      judgeAndForward(state, request, response, expectsContinue);
    });
  }

  function judgeAndForward(state: ConnectionState, request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void {
    // Node's parser stopped after it and dropped what followed it in the same read: the connection ends after the 400.
    const lines = readFieldLines(request.rawHeaders);
    if (asksUpgrade(lines)) return malformed(state, request, response, "Upgrade request behind requests not yet answered");
    const admitted = admit(state, request, response, expectsContinue, lines);
    if (admitted === undefined) return;
    if (expectsContinue) response.writeContinue();
    forward(state, request, response, admitted);
  }

  /** Checks and judges a request: answers 400 or 403 itself, else says what to forward. */
  function admit(state: ConnectionState, request: IncomingMessage, response: ServerResponse, expectsContinue: boolean, lines: FieldLines): Admitted | undefined {
    const method = request.method ?? "";
    if (request.httpVersion !== "1.1" && request.httpVersion !== "1.0") return void malformed(state, request, response, `HTTP version ${request.httpVersion}`);
    if (request.httpVersion === "1.0" && lines.lower.includes("transfer-encoding")) {
      return void malformed(state, request, response, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: framing faulty)");
    }
    const framing = framingFieldNamedByConnection(lines);
    if (framing !== undefined) return void malformed(state, request, response, `Connection names ${framing}`);
    const fields: [string, string][] = [];
    for (let index = 0; index + 1 < request.rawHeaders.length; index += 2) fields.push([request.rawHeaders[index] ?? "", request.rawHeaders[index + 1] ?? ""]);
    const accepted = httpRequestView({ method, target: request.url ?? "", fields });
    if (!accepted.ok) return void malformed(state, request, response, accepted.reason);
    const { view, query } = accepted;
    const verdict = judgeSafely(options.judge, view, state.connection);
    const logged = { connection: state.connection, method, host: view.host, path: view.path, policy: verdict.policy, rule: verdict.rule };
    if (!verdict.allow) {
      log({ verdict: "refused", status: 403, ...logged, ...(verdict.reason !== undefined && { reason: verdict.reason }) });
      // A client that waits for 100 Continue may send its body or not (RFC 9110 §10.1.1): after the 403 nobody knows where the next request starts.
      const close = expectsContinue && !request.complete;
      response.writeHead(403, { "content-type": TEXT_PLAIN, "content-length": "13", ...(close && { connection: "close" }) });
      response.end("Access denied");
      return undefined;
    }
    return { lines, view, query, verdict, logged };
  }

  /**
   * Forwards an admitted request; `upgrade`: it asks for WebSocket (the Upgrade field as received), and who
   * takes the upstream socket when the server agrees. Returns the exchange, to cancel.
   */
  function forward(
    state: ConnectionState,
    request: IncomingMessage,
    response: ServerResponse,
    { lines, view, query, verdict, logged }: Admitted,
    upgrade?: { value: string; switched(head: ResponseHead, upstream: Socket, rest: Buffer): void },
  ): Exchange {
    const onStatus = (status: number) => {
      if (verdict.audit) log({ verdict: "audited", status, ...logged });
    };
    // RFC 9110 §7.6.3: a proxy adds itself to Via. Node's parser has checked every name and value: they are written as received.
    let head = `${request.method} ${view.path}${query === undefined ? "" : `?${query}`} HTTP/1.1\r\n`;
    const fields = endToEndFields(lines);
    for (let index = 0; index < fields.length; index += 2) head += `${fields[index]}: ${fields[index + 1]}\r\n`;
    // Framing fields are end-to-end (a Connection option naming one was refused): as Node's parser checked them.
    const chunked = lines.lower.includes("transfer-encoding");
    const lengthLine = lines.lower.indexOf("content-length");
    const length = lengthLine < 0 ? 0 : Number(lines.raw[2 * lengthLine + 1]);
    // The upgrade fields are hop-by-hop: the one upgrade the proxy honors is asked of the next hop anew.
    if (upgrade) head += `Connection: Upgrade\r\nUpgrade: ${upgrade.value}\r\n`;
    head += `Via: ${request.httpVersion} palisade\r\n\r\n`;
    let finished = false;
    const done = () => {
      finished = true;
      const index = state.active.indexOf(forwarded);
      if (index >= 0) state.active.splice(index, 1);
      if (state.failed) settleFailure(state, request.socket);
    };
    const sent: Exchange = {
      method: request.method ?? "",
      head,
      chunked,
      // Node's parser has removed the chunked framing (its chunks go upstream framed anew) and checked the length.
      ...((chunked || length > 0) && { body: request }),
      ...(upgrade && {
        upgrade: {
          protocol: WEBSOCKET,
          switched(upstreamHead, upstream, rest) {
            onStatus(upstreamHead.status);
            done();
            upgrade.switched(upstreamHead, upstream, rest);
          },
        },
      }),
      sink: {
        head(upstreamHead) {
          onStatus(upstreamHead.status);
          const fields = endToEndFields(readFieldLines(upstreamHead.fields));
          fields.push("Via", `${upstreamHead.version} palisade`);
          response.writeHead(upstreamHead.status, upstreamHead.reason, fields);
        },
        data(chunks) {
          if (!response.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))) {
            // The client reads slower than the server writes: stop reading the server until it caught up.
            state.upstream.pause();
            response.once("drain", () => state.upstream.resume());
          }
        },
        end(chunks, trailers) {
          if (trailers.length > 0) response.addTrailers(readFieldLines(trailers).lower.map((_, line): [string, string] => [trailers[2 * line]!, trailers[2 * line + 1]!]));
          if (chunks.length === 0) response.end();
          else response.end(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
        },
        fail(error, answered) {
          if (finished || request.socket.destroyed || response.destroyed) return;
          if (answered) {
            request.socket.destroy();
            return;
          }
          state.closing = true;
          log({ verdict: "upstream-failed", status: 502, reason: error.message, ...logged });
          response.writeHead(502, { "content-type": TEXT_PLAIN, "content-length": "11", connection: "close" });
          response.end("Bad Gateway");
        },
      },
    };
    const forwarded: Forwarded = { request, response, sent };
    state.active.push(forwarded);
    response.on("finish", done);
    response.on("close", () => {
      // The client went away, or the response was cut: the upstream exchange cannot complete either.
      if (!response.writableFinished) state.upstream.cancel(sent);
      done();
    });
    request.on("error", () => state.upstream.cancel(sent));
    state.upstream.send(sent);
    return sent;
  }

  /**
   * Serves a request that asks to switch protocols, taken from the parser (the connection had no answer due).
   * Until the answer's head, a byte from the client is refused (400, close); after it, what the client sends
   * is held for the parser, which gets the connection back once the answer has ended, or the connection is
   * spliced to the upstream after a 101.
   */
  function serveUpgrade(state: ConnectionState, request: IncomingMessage, socket: Socket, head: Buffer): void {
    state.requests++;
    detached.add(socket);
    const forget = () => detached.delete(socket);
    socket.once("close", forget);
    // Node's keep-alive timer may still run on the socket; nobody listens to it any more.
    socket.setTimeout(0);
    const response = new http.ServerResponse(request);
    response.assignSocket(socket);
    const lines = readFieldLines(request.rawHeaders);
    const keepAlive = request.httpVersion === "1.1" && !lines.connection.has("close");
    response.shouldKeepAlive = keepAlive;
    const held: Buffer[] = [];
    let exchange: Exchange | undefined;
    const early = (reason: string) => {
      if (exchange) state.upstream.cancel(exchange);
      malformed(state, request, response, reason);
    };
    const onData = (chunk: Buffer) => {
      if (state.closing) return;
      if (!response.headersSent) return early("bytes sent after an Upgrade request before its answer");
      held.push(chunk);
      socket.pause();
    };
    // A client that half-closes or fails before the switch is gone: the socket ends writable too (no half-open), so no answer can follow.
    const onEnd = () => socket.destroy();
    const onError = () => socket.destroy();
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
    const release = () => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      response.detachSocket(socket);
    };
    response.once("finish", () => {
      release();
      if (state.closing || !keepAlive) {
        socket.end();
        return;
      }
      // The answer was not a switch: the connection goes on as HTTP/1.1, with what the client sent since.
      forget();
      socket.off("close", forget);
      server.emit("connection", socket);
      if (held.length > 0) socket.emit("data", Buffer.concat(held));
      socket.resume();
    });

    const ask = upgradeAsk(lines, request.httpVersion);
    if (ask.kind === "refused") return malformed(state, request, response, ask.reason);
    if (head.length > 0) return early("bytes sent after an Upgrade request before its answer");
    const admitted = admit(state, request, response, false, lines);
    if (admitted === undefined) return;
    if (ask.kind === "ignored") {
      exchange = forward(state, request, response, admitted);
      return;
    }
    exchange = forward(state, request, response, admitted, {
      value: ask.value,
      switched(upstreamHead, upstream, rest) {
        release();
        detached.add(upstream);
        upstream.once("close", () => detached.delete(upstream));
        options.upgraded?.(state.connection);
        const upstreamLines = readFieldLines(upstreamHead.fields);
        const fields = endToEndFields(upstreamLines);
        const upgradeField = upstreamHead.fields[2 * upstreamLines.lower.indexOf("upgrade") + 1]!;
        fields.push("Connection", "Upgrade", "Upgrade", upgradeField, "Via", `${upstreamHead.version} palisade`);
        // The reader checked every name and value: they are written as received.
        let answer = `HTTP/1.1 101 ${upstreamHead.reason}\r\n`;
        for (let index = 0; index < fields.length; index += 2) answer += `${fields[index]}: ${fields[index + 1]}\r\n`;
        socket.write(`${answer}\r\n`, "latin1");
        if (rest.length > 0) socket.write(rest);
        spliceSockets(socket, upstream);
      },
    });
  }

  server.on("request", (request, response) => onRequest(request, response, false));
  server.on("upgrade", (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const state = states.get(socket);
    if (state === undefined) socket.destroy();
    else serveUpgrade(state, request, socket, head);
  });
  server.on("checkContinue", (request, response) => onRequest(request, response, true));
  server.on("connect", (request: IncomingMessage, socket: Duplex) => {
    const state = states.get(socket);
    if (state) log({ verdict: "malformed", connection: state.connection, method: request.method, path: request.url, status: 400, reason: "CONNECT (authority form) is not proxied" });
    socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 11\r\n\r\nBad Request");
  });
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
    const state = states.get(socket);
    if (state === undefined) {
      socket.destroy();
      return;
    }
    // The parser stays failed: later bytes fail again, and are ignored.
    if (state.failed) return;
    state.failed = true;
    const code = error.code ?? "unknown";
    if (state.requests === 0 && NOT_HTTP_CODES.has(code)) {
      log({ verdict: "malformed", connection: state.connection, status: 0, reason: `not HTTP (${code})` });
      socket.destroy();
      return;
    }
    log({ verdict: "malformed", connection: state.connection, status: 400, reason: `${code}${"reason" in error && typeof error.reason === "string" ? `: ${error.reason}` : ""}` });
    // After the requests this parse delivered before failing have been judged (they were queued first).
    queueMicrotask(() => settleFailure(state, socket));
  });
  // Node's http server checks header and request deadlines only after it has started listening, and this
  // one never listens (connections are handed to it): tell it that it does, so that it starts its checks.
  server.emit("listening");

  return {
    serve(socket, firstBytes, connection) {
      const upstream = new UpstreamConnection(() => options.connectUpstream(connection), options.maxHeaderSize ?? HTTP_FRONT_DEFAULTS.maxHeaderSize);
      states.set(socket, { connection, upstream, requests: 0, active: [], failed: false, unanswered: new Set(), closing: false });
      socket.once("close", () => upstream.destroy());
      server.emit("connection", socket);
      // The parser has taken the socket over; the bytes read before it did are its first input.
      if (firstBytes.length > 0) socket.emit("data", firstBytes);
    },
    close() {
      server.closeAllConnections();
      server.close();
      for (const socket of detached) resetSocket(socket);
      detached.clear();
    },
  };
}
