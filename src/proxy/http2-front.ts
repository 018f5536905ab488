/**
 * The proxy's HTTP/2 side (cleartext, prior knowledge: RFC 9113 §3.3). Frames,
 * HPACK, pseudo-header fields and connection-specific fields are checked by
 * Node's nghttp2, which resets malformed streams and ends broken sessions.
 * Each stream is judged on its own (gRPC calls are streams like any other):
 * a refused stream gets 403 `Access denied` (421 `Misdirected Request` inside
 * a terminated connection for a host its rules do not name), a stream that
 * http-request.ts refuses (a path that cannot be normalized, `:authority`
 * against `Host`, CONNECT) gets 400, and the other streams of the connection go on. Allowed
 * streams go upstream over one HTTP/2 session per client session, with their
 * bodies and trailers streamed both ways.
 *
 * @module
 */
import http2 from "node:http2";
import type { ClientHttp2Session, Http2Session, Http2Stream, IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import { httpRequestView } from "../policy/http-request.ts";
import type { ConnectionInfo, HttpFlowLogEntry, HttpFrontOptions } from "./http-front-options.ts";
import { HTTP_FRONT_DEFAULTS, refusalOf } from "./http-front-options.ts";
import { judgeSafely } from "./safe-judge.ts";

/** The HTTP/2 server of the proxy; connections are handed to it, it never listens. */
export interface Http2Front {
  /** Serves a client connection whose first bytes (the connection preface, at least) were already read. */
  serve(socket: Socket, firstBytes: Buffer, connection: ConnectionInfo): void;
  /** Closes every session it serves. */
  close(): void;
}

interface SessionState {
  connection: ConnectionInfo;
  /** The upstream session being opened or open; replaced once it closes. */
  upstream: Promise<ClientHttp2Session> | undefined;
  /** The same session once open. */
  opened: ClientHttp2Session | undefined;
  /** The client's session closed: an upstream session that opens after it is closed at once. */
  closed: boolean;
  /** A complete request header block arrived on the session (a stream opened). */
  streamed: boolean;
}

/** A client stream to the upstream server, with the raw header list of its response. */
type UpstreamStream = Http2Stream & { on(event: "response", listener: (headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void): unknown };

const { HTTP2_HEADER_STATUS, NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** RFC 9113 §8.2.2: fields that HTTP/2 forbids; nghttp2 refuses them on the way in, so none should reach here. */
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/** A raw header list as the object Node's HTTP/2 API takes, keeping repeated fields as arrays in order. */
function headerObject(rawHeaders: readonly string[], keep: (name: string) => boolean): OutgoingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const name = (rawHeaders[index] ?? "").toLowerCase();
    const value = rawHeaders[index + 1] ?? "";
    if (!keep(name)) continue;
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else headers[name] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return headers;
}

function endToEnd(name: string): boolean {
  return !CONNECTION_SPECIFIC.has(name) && !name.startsWith(":");
}

export function createHttp2Front(options: HttpFrontOptions): Http2Front {
  const server = http2.createServer({
    settings: { enablePush: false, maxHeaderListSize: options.maxHeaderSize ?? HTTP_FRONT_DEFAULTS.maxHeaderSize },
  });
  const sessions = new Map<Http2Session, SessionState>();
  const log = (entry: Omit<HttpFlowLogEntry, "protocol">) => options.flowLog({ protocol: "HTTP/2", ...entry });

  function upstreamOf(state: SessionState): Promise<ClientHttp2Session> {
    const { opened } = state;
    if (state.upstream === undefined || (opened !== undefined && (opened.closed || opened.destroyed))) {
      state.opened = undefined;
      const { serverAddress, serverPort } = state.connection;
      const authority = `http://${serverAddress.includes(":") ? `[${serverAddress}]` : serverAddress}:${serverPort}`;
      // A connectUpstream that throws instead of rejecting fails the same way.
      const pending = new Promise<Socket>((resolve) => resolve(options.connectUpstream(state.connection))).then((socket) => {
        const upstream = http2.connect(authority, { createConnection: () => socket, settings: { enablePush: false } });
        // A failed upstream session fails its streams, which answer for themselves; the session's own error needs no handler beyond this.
        upstream.on("error", () => undefined);
        if (state.closed) upstream.close();
        else if (state.upstream === pending) state.opened = upstream;
        return upstream;
      });
      // A failed connect fails the streams waiting for it; the next stream tries again.
      pending.catch(() => {
        if (state.upstream === pending) state.upstream = undefined;
      });
      state.upstream = pending;
    }
    return state.upstream;
  }

  function answer(stream: ServerHttp2Stream, status: number, body: string): void {
    if (stream.destroyed || stream.headersSent) return;
    stream.respond({ [HTTP2_HEADER_STATUS]: status, "content-type": "text/plain; charset=utf-8", "content-length": String(Buffer.byteLength(body)) });
    stream.end(body);
    // The rest of the request body, if any, is read and dropped: the stream ends cleanly when the client's side does.
    stream.resume();
  }

  function onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void {
    const state = sessions.get(stream.session as Http2Session);
    if (state === undefined) {
      stream.close(NGHTTP2_CANCEL);
      return;
    }
    state.streamed = true;
    const method = String(headers[":method"] ?? "");
    const target = headers[":path"];
    const authority = headers[":authority"];
    const fields: [string, string][] = [];
    for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
      const name = rawHeaders[index] ?? "";
      if (!name.startsWith(":")) fields.push([name, rawHeaders[index + 1] ?? ""]);
    }
    const accepted = typeof target === "string"
      ? httpRequestView({ method, target, authority: typeof authority === "string" ? authority : undefined, fields })
      : { ok: false as const, reason: method === "CONNECT" ? "CONNECT (authority form) is not proxied" : "no :path" };
    if (!accepted.ok) {
      log({ verdict: "malformed", connection: state.connection, method, path: typeof target === "string" ? target : undefined, status: 400, reason: accepted.reason });
      answer(stream, 400, "Bad Request");
      return;
    }
    const { view, query } = accepted;
    const verdict = judgeSafely(options.judge, view, state.connection);
    const logged = { connection: state.connection, method, host: view.host, path: view.path, policy: verdict.policy, rule: verdict.rule, ...(verdict.reason !== undefined && { reason: verdict.reason }) };
    if (!verdict.allow) {
      const refusal = refusalOf(verdict);
      log({ verdict: refusal.verdict, status: refusal.status, ...logged });
      answer(stream, refusal.status, refusal.body);
      return;
    }
    const forwarded: OutgoingHttpHeaders = {
      ":method": method,
      ":scheme": String(headers[":scheme"] ?? "http"),
      ":authority": typeof authority === "string" ? authority : (typeof headers.host === "string" ? headers.host : ""),
      ":path": `${view.path}${query === undefined ? "" : `?${query}`}`,
      ...headerObject(rawHeaders, endToEnd),
      via: "2 palisade",
    };
    const failed = (error: unknown): void => {
      log({ verdict: "upstream-failed", status: 502, ...logged, reason: error instanceof Error ? error.message : String(error) });
      answer(stream, 502, "Bad Gateway");
    };
    // The request body, if any, waits in the stream (under HTTP/2 flow control) until the upstream session is open.
    upstreamOf(state).then((session) => {
      if (stream.destroyed) return;
      let upstream: UpstreamStream;
      try {
        upstream = session.request(forwarded, { endStream: (flags & NGHTTP2_FLAG_END_STREAM) !== 0, waitForTrailers: false });
      } catch (error) {
        failed(error);
        return;
      }
      relay(stream, upstream, (flags & NGHTTP2_FLAG_END_STREAM) !== 0, verdict.audit === true, logged);
    }, failed);
  }

  /** Streams an allowed request upstream and the response back, trailers and resets included. */
  function relay(stream: ServerHttp2Stream, upstream: UpstreamStream, ended: boolean, audit: boolean, logged: Omit<HttpFlowLogEntry, "protocol" | "verdict" | "status">): void {
    let trailers: OutgoingHttpHeaders | undefined;
    upstream.on("response", (responseHeaders, _flags, responseRaw) => {
      const status = Number(responseHeaders[HTTP2_HEADER_STATUS] ?? 502);
      if (audit) log({ verdict: "audited", status, ...logged });
      if (stream.destroyed) return;
      stream.respond({ [HTTP2_HEADER_STATUS]: status, ...headerObject(responseRaw, endToEnd), via: "2 palisade" }, { waitForTrailers: true });
      upstream.pipe(stream);
    });
    upstream.on("trailers", (_trailers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      trailers = headerObject(raw, endToEnd);
    });
    stream.on("wantTrailers", () => stream.sendTrailers(trailers ?? {}));
    upstream.on("error", (error: Error) => {
      if (!stream.headersSent) {
        log({ verdict: "upstream-failed", status: 502, ...logged, reason: error.message });
        answer(stream, 502, "Bad Gateway");
      } else stream.close(NGHTTP2_CANCEL);
    });
    upstream.on("close", () => {
      // A reset upstream stream (not a clean end) resets the client's stream with the same code.
      if (upstream.rstCode !== undefined && upstream.rstCode !== NGHTTP2_NO_ERROR && !stream.destroyed) {
        if (!stream.headersSent) {
          log({ verdict: "upstream-failed", status: 502, ...logged, reason: `upstream reset the stream (code ${upstream.rstCode})` });
          answer(stream, 502, "Bad Gateway");
        } else stream.close(upstream.rstCode);
      }
    });
    stream.on("close", () => {
      if (!upstream.destroyed && !upstream.closed) upstream.close(NGHTTP2_CANCEL);
    });
    if (!ended) stream.pipe(upstream);
  }

  server.on("stream", onStream);
  server.on("session", (session) => {
    session.on("error", () => undefined);
  });

  return {
    serve(socket, firstBytes, connection) {
      const state: SessionState = { connection, upstream: undefined, opened: undefined, closed: false, streamed: false };
      server.once("session", (session: Http2Session) => {
        sessions.set(session, state);
        // A client that sends no complete header block in time holds nothing (a slow header block, as for HTTP/1.1).
        const headersDeadline = setTimeout(() => {
          if (state.streamed || session.destroyed) return;
          log({ verdict: "malformed", connection, status: 0, reason: "no complete request header block within the header timeout" });
          session.destroy();
        }, options.headersTimeoutMs ?? HTTP_FRONT_DEFAULTS.headersTimeoutMs);
        headersDeadline.unref();
        // An idle session is ended gracefully (GOAWAY): streams still open finish, new ones go to a new connection.
        session.setTimeout(options.keepAliveTimeoutMs ?? HTTP_FRONT_DEFAULTS.keepAliveTimeoutMs, () => session.close());
        session.once("close", () => {
          clearTimeout(headersDeadline);
          sessions.delete(session);
          state.closed = true;
          state.opened?.close();
        });
      });
      // Node's HTTP/2 session reads what the socket already buffered before it reads the socket itself.
      socket.pause();
      if (firstBytes.length > 0) socket.unshift(firstBytes);
      server.emit("connection", socket);
    },
    close() {
      for (const session of sessions.keys()) session.destroy();
      server.close();
    },
  };
}
