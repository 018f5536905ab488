/**
 * What the proxy's HTTP tests run against, over loopback only: an upstream
 * server (HTTP/1.1 or HTTP/2 cleartext) that records every request it gets,
 * the proxy's HTTP front end in front of it with given rules (and its TLS
 * front end, given a connection judge), and a raw HTTP/1.1 client that sends
 * exact bytes and reads responses one at a time.
 *
 * @module
 */
import { EventEmitter, once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { HttpRule } from "../../src/policy/api-types.ts";
import { compileHttpRules } from "../../src/policy/http-rule.ts";
import type { HttpFlowLogEntry, HttpFrontOptions, HttpVerdict } from "../../src/proxy/http-front-options.ts";
import { createHttpFront } from "../../src/proxy/http-front.ts";
import { createTlsFront } from "../../src/proxy/tls-front.ts";
import type { ConnectionJudge } from "../../src/proxy/tls-front.ts";

/** A request as the upstream server got it. */
export interface UpstreamRequest {
  method: string;
  path: string;
  /** Raw field lines (HTTP/2: pseudo-header fields too). */
  rawHeaders: string[];
  body: string;
  trailers: string[];
}

export interface ProxyHarness {
  proxyPort: number;
  /** Requests the upstream server received, in order. */
  upstreamRequests: UpstreamRequest[];
  /** Emits "body" (request) whenever an upstream request's body grows, "request" when one starts. */
  upstreamEvents: EventEmitter;
  /** Upstream connections opened by the proxy. */
  upstreamConnections(): number;
  flowLog: HttpFlowLogEntry[];
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Allow rules; a request that matches none is refused. */
  allow: HttpRule[];
  /** Rules whose match is refused but let through (audit mode). */
  audit?: HttpRule[];
  upstream: "http1" | "http2";
  front?: Partial<Omit<HttpFrontOptions, "judge" | "connectUpstream" | "flowLog">>;
  /** Instead of judging by `allow` and `audit`. */
  judge?: HttpFrontOptions["judge"];
  /** Instead of connecting to the harness's upstream server. */
  connectUpstream?: HttpFrontOptions["connectUpstream"];
  /** Judges connections by their first bytes: with it, the TLS front end stands beside the HTTP one, as in the node proxy. */
  judgeConnection?: ConnectionJudge;
}

function judgeOf(options: HarnessOptions): (request: Parameters<HttpFrontOptions["judge"]>[0]) => HttpVerdict {
  const allow = compileHttpRules(options.allow);
  const audit = compileHttpRules(options.audit ?? []);
  return (request) => {
    const allowed = allow.match(request);
    if (allowed >= 0) return { allow: true, policy: "x/web", rule: `http[${allowed}]` };
    const audited = audit.match(request);
    if (audited >= 0) return { allow: true, audit: true, policy: "x/audit", rule: `http[${audited}]` };
    return { allow: false, policy: "x/web", rule: "default" };
  };
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** A loopback port that was free a moment ago: nobody listens on it. */
export async function unusedPort(): Promise<number> {
  const probe = net.createServer();
  const port = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export async function startProxyHarness(options: HarnessOptions): Promise<ProxyHarness> {
  const upstreamRequests: UpstreamRequest[] = [];
  const upstreamEvents = new EventEmitter();
  let upstreamConnections = 0;
  // Records a request the upstream got and collects its body as it streams in.
  const received = (head: Pick<UpstreamRequest, "method" | "path" | "rawHeaders">, body: NodeJS.ReadableStream): UpstreamRequest => {
    const record: UpstreamRequest = { ...head, body: "", trailers: [] };
    upstreamRequests.push(record);
    upstreamEvents.emit("request", record);
    body.setEncoding("latin1");
    body.on("data", (chunk: string) => {
      record.body += chunk;
      upstreamEvents.emit("body", record);
    });
    return record;
  };
  let upstream: http.Server | http2.Http2Server;
  if (options.upstream === "http1") {
    upstream = http.createServer((request, response) => {
      const record = received({ method: request.method ?? "", path: request.url ?? "", rawHeaders: request.rawHeaders }, request);
      request.on("end", () => {
        record.trailers = request.rawTrailers;
        const body = `upstream ${record.method} ${record.path} body=${record.body}`;
        response.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body), "x-upstream": "1", connection: "keep-alive" });
        response.end(body);
      });
    });
  } else {
    const server = http2.createServer();
    server.on("stream", (stream, headers, _flags, rawHeaders) => {
      const record = received({ method: String(headers[":method"]), path: String(headers[":path"]), rawHeaders }, stream);
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "text/plain", "x-upstream": "1" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "x-upstream-trailer": "yes" }));
        stream.end(`upstream ${record.method} ${record.path} body=${record.body}`);
      });
    });
    upstream = server;
  }
  upstream.on("connection", () => upstreamConnections++);
  const upstreamPort = await listen(upstream);

  const flowLog: HttpFlowLogEntry[] = [];
  const connectUpstream = options.connectUpstream ?? (async (connection) => net.connect(connection.serverPort, connection.serverAddress));
  const tls = options.judgeConnection && createTlsFront({ judgeConnection: options.judgeConnection, connectUpstream, flowLog: () => undefined });
  const front = createHttpFront({
    judge: options.judge ?? judgeOf(options),
    connectUpstream,
    flowLog: (entry) => flowLog.push(entry),
    ...options.front,
  }, tls);
  const proxy = net.createServer((socket) => front.handleConnection(socket, {
    clientAddress: socket.remoteAddress ?? "",
    clientPort: socket.remotePort ?? 0,
    serverAddress: "127.0.0.1",
    serverPort: upstreamPort,
  }));
  const proxyPort = await listen(proxy);
  return {
    proxyPort,
    upstreamRequests,
    upstreamEvents,
    upstreamConnections: () => upstreamConnections,
    flowLog,
    async close() {
      front.close();
      const closed = [new Promise((resolve) => proxy.close(resolve)), new Promise((resolve) => upstream.close(resolve))];
      if (upstream instanceof http.Server) upstream.closeAllConnections();
      await Promise.all(closed);
    },
  };
}

/** A response as the raw client read it. */
export interface RawResponse {
  status: number;
  /** Field lines, names in lower case. */
  headers: [string, string][];
  body: string;
}

/**
 * A client connection that sends exact bytes and reads HTTP/1.1 responses
 * (Content-Length or chunked bodies) one at a time, or learns that the proxy
 * closed the connection.
 */
export class RawConnection {
  readonly #socket: net.Socket;
  #buffer = "";
  #closed = false;
  #reset = false;
  readonly #events = new EventEmitter();

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      this.#events.emit("change");
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNRESET") this.#reset = true;
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#events.emit("change");
    });
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = net.connect(port, "127.0.0.1");
    await once(socket, "connect");
    return new RawConnection(socket);
  }

  /** A raw connection over a socket already open (a TLS client socket, say). */
  static over(socket: net.Socket): RawConnection {
    return new RawConnection(socket);
  }

  send(bytes: string | Buffer): void {
    this.#socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
  }

  /** The next complete response, or "closed" when the connection closes first (what came before is in `leftover`). */
  async next(): Promise<RawResponse | "closed"> {
    for (;;) {
      const response = this.#take();
      if (response) return response;
      if (this.#closed) return "closed";
      await once(this.#events, "change");
    }
  }

  /** Bytes received and not read as a response. */
  get leftover(): string {
    return this.#buffer;
  }

  /** Resolves when the proxy has closed the connection. */
  async closed(): Promise<void> {
    while (!this.#closed) await once(this.#events, "change");
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Whether the peer ended the connection with a reset (RST), not a FIN. */
  get wasReset(): boolean {
    return this.#reset;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #take(): RawResponse | undefined {
    const end = this.#buffer.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const [statusLine = "", ...lines] = this.#buffer.slice(0, end).split("\r\n");
    const status = Number(statusLine.split(" ")[1]);
    const headers = lines.map((line): [string, string] => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    });
    const field = (name: string) => headers.find(([key]) => key === name)?.[1];
    let rest = this.#buffer.slice(end + 4);
    let body = "";
    if (status >= 100 && status < 200) {
      this.#buffer = rest;
      return { status, headers, body };
    }
    if (field("transfer-encoding")?.toLowerCase() === "chunked") {
      for (;;) {
        const lineEnd = rest.indexOf("\r\n");
        if (lineEnd < 0) return undefined;
        const size = parseInt(rest.slice(0, lineEnd), 16);
        if (size === 0) {
          const trailerEnd = rest.indexOf("\r\n\r\n", lineEnd - 2 < 0 ? 0 : lineEnd - 2);
          if (trailerEnd < 0) return undefined;
          rest = rest.slice(trailerEnd + 4);
          break;
        }
        if (rest.length < lineEnd + 2 + size + 2) return undefined;
        body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
        rest = rest.slice(lineEnd + 2 + size + 2);
      }
    } else {
      const length = Number(field("content-length") ?? 0);
      if (rest.length < length) return undefined;
      body = rest.slice(0, length);
      rest = rest.slice(length);
    }
    this.#buffer = rest;
    return { status, headers, body };
  }
}
