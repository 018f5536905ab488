/**
 * The process standing in for a pod's containers, run inside the pod's
 * network namespace: `node pod-server.js [--pod NS/NAME] 80/TCP 81/UDP
 * 80/SCTP 8080/TCP/http 9090/TCP/http2 …`. It echoes what it receives on
 * every declared TCP and UDP port: TCP streams back to the sender, UDP
 * datagrams back to their source (IPv4 and IPv6). A TCP port in `http` mode
 * (a container port whose name starts with `http`) answers HTTP/1.1 instead,
 * keep-alive, and one in `http2` mode (name starting with `http2` or
 * `grpc`) HTTP/2 cleartext with prior knowledge: any method and path get 200
 * and a JSON body naming the pod, the protocol, the method, the path and the
 * client address the server saw; a WebSocket handshake on an `http` port
 * switches to an echo of its messages (websocket-echo.ts). SCTP ports
 * are answered by a `palisade-sctp serve` child over raw sockets (the kernel
 * may have no SCTP sockets): an INIT gets an INIT ACK, or an ABORT on a port
 * not served. Prints "ready" once every socket listens and the child is
 * ready; exits if the child dies, and the child dies with it.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import http2 from "node:http2";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { sctpRawBinary } from "./sctp-raw.ts";
import { echoWebSocket } from "./websocket-echo.ts";

// Not imported: an import of node:http reads its lazy exports (undici's WebSocket), about 12 MiB in every pod's server (eslint.config.js).
const http = process.getBuiltinModule("node:http");

/** A port the pod server listens on. */
export interface PodServerPort {
  port: number;
  protocol: "TCP" | "UDP" | "SCTP";
  /** TCP only: answer HTTP/1.1 or HTTP/2 (prior knowledge) instead of echoing. */
  mode?: "http" | "http2";
}

/**
 * The mode of a TCP container port by its name: `http2…` and `grpc…` serve
 * HTTP/2, other `http…` names HTTP/1.1, anything else echoes.
 *
 * @example
 * ```ts
 * httpModeOfPortName("http-api"); // "http"
 * httpModeOfPortName("grpc"); // "http2"
 * ```
 */
export function httpModeOfPortName(name: string | undefined): PodServerPort["mode"] {
  if (name === undefined) return undefined;
  if (name.startsWith("http2") || name.startsWith("grpc")) return "http2";
  return name.startsWith("http") ? "http" : undefined;
}

/** The argument that names `port` (`PORT/PROTOCOL[/MODE]`). */
export function podServerPortArg(port: PodServerPort): string {
  return `${port.port}/${port.protocol}${port.mode === undefined ? "" : `/${port.mode}`}`;
}

/** Protocols the pod server serves. */
export const POD_SERVER_PROTOCOLS: readonly string[] = ["TCP", "UDP", "SCTP"];

/**
 * Parses the pod server's arguments (`PORT/PROTOCOL`).
 *
 * @example
 * ```ts
 * parsePodServerPorts(["80/TCP", "81/SCTP"]); // [{ port: 80, protocol: "TCP" }, { port: 81, protocol: "SCTP" }]
 * ```
 */
export function parsePodServerPorts(args: readonly string[]): PodServerPort[] {
  return args.map((arg) => {
    const [port, protocol, mode, ...rest] = arg.split("/");
    const number = Number(port);
    if (!Number.isInteger(number) || number < 1 || number > 65535 || (protocol !== "TCP" && protocol !== "UDP" && protocol !== "SCTP")) {
      throw new Error(`Cannot serve port "${arg}": expected PORT/TCP, PORT/UDP or PORT/SCTP with PORT 1 to 65535`);
    }
    if (mode === undefined) return { port: number, protocol };
    if (protocol !== "TCP" || (mode !== "http" && mode !== "http2") || rest.length > 0) throw new Error(`Cannot serve port "${arg}": a mode is PORT/TCP/http or PORT/TCP/http2`);
    return { port: number, protocol, mode };
  });
}

/** What an HTTP answer of the pod server says. */
export interface PodHttpAnswer {
  pod: string;
  protocol: "HTTP/1.1" | "HTTP/2";
  method: string;
  path: string;
  /** The client address the server saw (an IPv4 client as IPv4, not IPv4-mapped). */
  client: string;
}

function answerBody(pod: string, protocol: PodHttpAnswer["protocol"], method: string, path: string, client: string | undefined): string {
  const answer: PodHttpAnswer = { pod, protocol, method, path, client: (client ?? "").replace(/^::ffff:(?=\d+\.)/, "") };
  return `${JSON.stringify(answer)}\n`;
}

/** Serves HTTP/1.1 (keep-alive) or HTTP/2 with prior knowledge on `port`; calls `bound` once listening. */
function serveHttp(pod: string, port: number, mode: "http" | "http2", bound: () => void): void {
  const listen = { port, host: "::", ipv6Only: false };
  if (mode === "http") {
    const server = http.createServer((request, response) => {
      request.resume();
      request.on("end", () => {
        const body = answerBody(pod, "HTTP/1.1", request.method ?? "", request.url ?? "", request.socket.remoteAddress);
        response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        response.end(body);
      });
    });
    // A WebSocket handshake on the HTTP/1.1 port switches to an echo of its messages.
    server.on("upgrade", echoWebSocket);
    server.listen(listen, bound);
    return;
  }
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.resume();
    stream.on("end", () => {
      const body = answerBody(pod, "HTTP/2", String(headers[":method"] ?? ""), String(headers[":path"] ?? ""), stream.session?.socket.remoteAddress);
      stream.respond({ ":status": 200, "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      stream.end(body);
    });
  });
  server.on("sessionError", () => undefined);
  server.listen(listen, bound);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** Starts `palisade-sctp serve` on `ports`; calls `ready` once it is; exits when it dies. */
function serveSctp(ports: readonly number[], ready: () => void): void {
  const child = spawn(sctpRawBinary(), ["serve", ...ports.map(String)], { stdio: ["ignore", "pipe", "inherit"] });
  const what = `SCTP ports ${ports.join(", ")}`;
  child.on("error", (error) => fail(`Cannot serve ${what}: ${error.message}`));
  child.on("exit", (code, signal) => fail(`Cannot serve ${what}: palisade-sctp exited (${signal ?? code})`));
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line === "ready") ready();
  });
}

/** Listens on every port; calls `ready` once all sockets are bound. */
function serve(pod: string, ports: readonly PodServerPort[], ready: () => void): void {
  const sctp = ports.filter((p) => p.protocol === "SCTP").map((p) => p.port);
  let pending = ports.reduce((n, p) => n + (p.protocol === "TCP" ? 1 : p.protocol === "UDP" ? 2 : 0), sctp.length > 0 ? 1 : 0);
  const bound = (): void => {
    if (--pending === 0) ready();
  };
  if (pending === 0) ready();
  if (sctp.length > 0) serveSctp(sctp, bound);
  for (const { port, protocol, mode } of ports) {
    if (protocol === "SCTP") continue;
    if (mode !== undefined) {
      serveHttp(pod, port, mode, bound);
      continue;
    }
    if (protocol === "TCP") {
      createServer((socket) => socket.pipe(socket).on("error", () => socket.destroy())).listen({ port, host: "::", ipv6Only: false }, bound);
      continue;
    }
    for (const type of ["udp4", "udp6"] as const) {
      // The IPv6 socket leaves IPv4 to the udp4 one, so replies leave from the address asked.
      const udp = createSocket(type === "udp6" ? { type, ipv6Only: true } : { type });
      udp.on("message", (msg, from) => udp.send(msg, from.port, from.address));
      udp.bind(port, type === "udp4" ? "0.0.0.0" : "::", bound);
    }
  }
}

if (import.meta.main) {
  try {
    // Like a pod's pause container, the process holds the sandbox for the pod's whole life, ports or not.
    setInterval(() => {}, 2 ** 31 - 1);
    const args = process.argv.slice(2);
    const pod = args[0]?.startsWith("--pod=") ? (args.shift() as string).slice("--pod=".length) : "";
    serve(pod, parsePodServerPorts(args), () => process.stdout.write("ready\n"));
  } catch (error) {
    fail((error as Error).message);
  }
}
