/**
 * Both ends of a line protocol for the kernel suites, run inside network
 * namespaces. `node line-peer.js serve PORT...` answers each line with
 * `<line> from <peer address> <peer port>` (the peer it sees, so a test can
 * tell a proxy kept the client's address) and prints one JSON line per
 * connection event (`open`, `end`, `reset`). `node line-peer.js request
 * HOST PORT fin|rst LINE...` connects, prints `{"local": ...}`, sends the
 * lines one at a time and prints every line it gets back, then closes with
 * a FIN or an RST and prints `{"closed": ...}`; with `half` instead it sends
 * every line and its FIN at once (a client that half-closes after its
 * request) and reads until the peer closes. It exits 2 when it cannot
 * connect within 3 s. `node line-peer.js hold HOST PORT` connects, prints
 * `{"local": ...}`, sends each line of its stdin and prints the replies.
 *
 * @module
 */
import { connect, createServer, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** This script (compiled). */
export const LINE_PEER_PATH = fileURLToPath(import.meta.url);

/** What `request` printed, parsed. */
export interface LineExchange {
  local: { address: string; port: number };
  replies: string[];
  closed: { error?: string };
}

/** Parses the output of `request` (throws if it did not connect). */
export function parseExchange(stdout: string): LineExchange {
  const lines = stdout.split("\n").filter((line) => line !== "");
  const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const local = records.find((r) => "local" in r)?.local as LineExchange["local"] | undefined;
  if (local === undefined) throw new Error(`the client did not connect: ${stdout}`);
  return {
    local,
    replies: records.flatMap((r) => ("reply" in r ? [r.reply as string] : [])),
    closed: (records.find((r) => "closed" in r)?.closed as LineExchange["closed"] | undefined) ?? { error: "never closed" },
  };
}

function print(record: unknown): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

/** The lines arriving on `socket`; its errors are the socket's handlers' to report. */
function linesOf(socket: Socket): ReturnType<typeof createInterface> {
  return createInterface({ input: socket }).on("error", () => undefined);
}

function serve(ports: number[]): void {
  const onConnection = (socket: Socket) => {
    // A dual-stack listener names IPv4 peers as v4-mapped IPv6 addresses.
    const peer = { address: socket.remoteAddress?.replace(/^::ffff:/, ""), port: socket.remotePort, local: socket.localPort };
    print({ open: peer });
    // The socket's own error handler reports a reset; readline re-emits it.
    linesOf(socket).on("line", (line) => socket.write(`${line} from ${peer.address} ${peer.port}\n`));
    socket.on("end", () => {
      print({ end: peer });
      socket.end();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => print({ reset: peer, code: error.code }));
  };
  let listening = 0;
  for (const port of ports) {
    createServer(onConnection).listen({ port, host: "::", ipv6Only: false }, () => {
      listening += 1;
      if (listening === ports.length) print({ ready: ports });
    });
  }
}

function request(host: string, port: number, close: string, lines: string[]): void {
  const socket = connect({ host, port });
  const timer = setTimeout(() => {
    print({ timeout: true });
    process.exit(2);
  }, 3000);
  let pending = [...lines];
  const next = () => {
    const line = pending.shift();
    if (line !== undefined) {
      socket.write(`${line}\n`);
      return;
    }
    if (close === "rst") socket.resetAndDestroy();
    else socket.end();
  };
  socket.on("connect", () => {
    clearTimeout(timer);
    print({ local: { address: socket.localAddress, port: socket.localPort } });
    if (close === "half") socket.end(pending.splice(0).map((line) => `${line}\n`).join(""));
    else next();
  });
  linesOf(socket).on("line", (line) => {
    print({ reply: line });
    // The proxy's greeting is no answer to a request.
    if (!line.startsWith("proxied") && close !== "half") next();
  });
  socket.on("error", (error: NodeJS.ErrnoException) => {
    if (close === "rst" && pending.length === 0 && error.code === "ERR_SOCKET_CLOSED") return;
    print({ closed: { error: error.code ?? error.message } });
    process.exit(1);
  });
  socket.on("close", () => {
    pending = [];
    print({ closed: {} });
  });
}

function hold(host: string, port: number): void {
  const socket = connect({ host, port });
  socket.on("connect", () => print({ local: { address: socket.localAddress, port: socket.localPort } }));
  linesOf(socket).on("line", (line) => print({ reply: line }));
  createInterface({ input: process.stdin }).on("line", (line) => socket.write(`${line}\n`));
  socket.on("error", (error: NodeJS.ErrnoException) => print({ closed: { error: error.code ?? error.message } }));
}

if (import.meta.main) {
  const [mode = "", ...args] = process.argv.slice(2);
  if (mode === "serve") serve(args.map(Number));
  else if (mode === "hold") hold(args[0] ?? "", Number(args[1]));
  else if (mode === "request") request(args[0] ?? "", Number(args[1]), args[2] ?? "fin", args.slice(3));
  else throw new Error(`Unknown mode "${mode}": serve PORT... | request HOST PORT fin|rst|half LINE... | hold HOST PORT`);
}
