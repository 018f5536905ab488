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
 * @module
 */
import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { httpRequestView } from "../policy/http-request.ts";
import { endToEndFields, flatFields, framingFieldNamedByConnection } from "./hop-by-hop.ts";
import { UpstreamConnection } from "./http1-upstream.ts";
import type { Exchange } from "./http1-upstream.ts";
import type { ConnectionInfo, HttpFlowLogEntry, HttpFrontOptions } from "./http-front-options.ts";
import { HTTP_FRONT_DEFAULTS } from "./http-front-options.ts";
import { judgeSafely } from "./safe-judge.ts";

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
  });
  const states = new WeakMap<object, ConnectionState>();
  const log = (entry: Omit<HttpFlowLogEntry, "protocol">) => options.flowLog({ protocol: "HTTP/1.1", ...entry });

  function malformed(state: ConnectionState, request: IncomingMessage, response: ServerResponse, reason: string): void {
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
    // llhttp may still refuse this request's framing after handing it over, in the same parse: judge it once that parse is over.
    queueMicrotask(() => {
      if (state.failed && !request.complete) return;
      judgeAndForward(state, request, response, expectsContinue);
    });
  }

  function judgeAndForward(state: ConnectionState, request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void {
    const method = request.method ?? "";
    if (request.httpVersion !== "1.1" && request.httpVersion !== "1.0") return malformed(state, request, response, `HTTP version ${request.httpVersion}`);
    if (request.httpVersion === "1.0" && request.headers["transfer-encoding"] !== undefined) {
      return malformed(state, request, response, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: framing faulty)");
    }
    const framing = framingFieldNamedByConnection(request.rawHeaders);
    if (framing !== undefined) return malformed(state, request, response, `Connection names ${framing}`);
    const fields: [string, string][] = [];
    for (let index = 0; index + 1 < request.rawHeaders.length; index += 2) fields.push([request.rawHeaders[index] ?? "", request.rawHeaders[index + 1] ?? ""]);
    const accepted = httpRequestView({ method, target: request.url ?? "", fields });
    if (!accepted.ok) return malformed(state, request, response, accepted.reason);
    const { view, query } = accepted;
    const verdict = judgeSafely(options.judge, view, state.connection);
    const logged = { connection: state.connection, method, host: view.host, path: view.path, policy: verdict.policy, rule: verdict.rule };
    if (!verdict.allow) {
      log({ verdict: "refused", status: 403, ...logged, ...(verdict.reason !== undefined && { reason: verdict.reason }) });
      // A client that waits for 100 Continue may send its body or not (RFC 9110 §10.1.1): after the 403 nobody knows where the next request starts.
      const close = expectsContinue && !request.complete;
      response.writeHead(403, { "content-type": TEXT_PLAIN, "content-length": "13", ...(close && { connection: "close" }) });
      response.end("Access denied");
      return;
    }
    if (expectsContinue) response.writeContinue();
    forward(state, request, response, `${view.path}${query === undefined ? "" : `?${query}`}`, (status) => {
      if (verdict.audit) log({ verdict: "audited", status, ...logged });
    }, logged);
  }

  function forward(
    state: ConnectionState,
    request: IncomingMessage,
    response: ServerResponse,
    target: string,
    onStatus: (status: number) => void,
    logged: Omit<HttpFlowLogEntry, "protocol" | "verdict" | "status">,
  ): void {
    // RFC 9110 §7.6.3: a proxy adds itself to Via. Node's parser has checked every name and value: they are written as received.
    let head = `${request.method} ${target} HTTP/1.1\r\n`;
    let chunked = false;
    let length = 0;
    for (const [name, value] of endToEndFields(request.rawHeaders)) {
      head += `${name}: ${value}\r\n`;
      const lower = name.toLowerCase();
      if (lower === "transfer-encoding") chunked = true;
      else if (lower === "content-length") length = Number(value);
    }
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
      sink: {
        head(upstreamHead) {
          onStatus(upstreamHead.status);
          const fields = endToEndFields(upstreamHead.fields.flat());
          fields.push(["Via", `${upstreamHead.version} palisade`]);
          response.writeHead(upstreamHead.status, upstreamHead.reason, flatFields(fields));
        },
        data(chunks) {
          if (!response.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))) {
            // The client reads slower than the server writes: stop reading the server until it caught up.
            state.upstream.pause();
            response.once("drain", () => state.upstream.resume());
          }
        },
        end(chunks, trailers) {
          if (trailers.length > 0) response.addTrailers(trailers);
          if (chunks.length === 0) response.end();
          else response.end(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
        },
        fail(error, answered) {
          if (finished || request.socket.destroyed || response.destroyed) return;
          if (answered) {
            request.socket.destroy();
            return;
          }
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
  }

  server.on("request", (request, response) => onRequest(request, response, false));
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
      states.set(socket, { connection, upstream, requests: 0, active: [], failed: false });
      socket.once("close", () => upstream.destroy());
      server.emit("connection", socket);
      // The parser has taken the socket over; the bytes read before it did are its first input.
      if (firstBytes.length > 0) socket.emit("data", firstBytes);
    },
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
