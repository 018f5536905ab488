/**
 * Both ends of a connection whose client port is taken again at once, for
 * the suites that check a reused tuple through the proxy behaves as it would
 * without it. `node reuse-peer.js serve PORT...` greets each connection with
 * `hello <peer address> <peer port>` and closes when the client sends
 * `close` (so the server closes first) or when the client closes. `node
 * reuse-peer.js connect HOST PORT LOCAL_PORT server|client` connects from
 * LOCAL_PORT (SO_REUSEADDR, as Node binds), waits for the greeting, lets
 * the server or itself close first, and prints `{"local": ..., "replies":
 * [...]}` once closed; it prints `{"error": CODE}` and exits 2 when it
 * cannot connect within 8 s or the connection fails.
 *
 * @module
 */
import { connect, createServer, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** This script (compiled). */
export const REUSE_PEER_PATH = fileURLToPath(import.meta.url);

/** What `connect` printed. */
export interface ReuseExchange {
  local: { address: string; port: number };
  replies: string[];
}

function print(record: unknown): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function serve(ports: number[]): void {
  const onConnection = (socket: Socket) => {
    socket.on("error", () => undefined);
    socket.write(`hello ${socket.remoteAddress?.replace(/^::ffff:/, "")} ${socket.remotePort}\n`);
    createInterface({ input: socket })
      .on("error", () => undefined)
      .on("line", (line) => {
        if (line === "close") socket.end();
      });
  };
  let listening = 0;
  for (const port of ports) {
    createServer(onConnection).listen({ port, host: "::", ipv6Only: false }, () => {
      listening += 1;
      if (listening === ports.length) print({ ready: ports });
    });
  }
}

function request(host: string, port: number, localPort: number, closesFirst: string): void {
  const socket = connect({ host, port, localPort });
  const replies: string[] = [];
  let local: ReuseExchange["local"] | undefined;
  const fail = (code: string) => {
    print({ error: code });
    process.exit(2);
  };
  const timer = setTimeout(() => fail("ETIMEDOUT"), 8000);
  socket.on("connect", () => {
    clearTimeout(timer);
    local = { address: socket.localAddress ?? "", port: socket.localPort ?? 0 };
  });
  socket.on("error", (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
  createInterface({ input: socket })
    .on("error", () => undefined)
    .on("line", (line) => {
      replies.push(line);
      if (!line.startsWith("hello")) return;
      if (closesFirst === "server") socket.write("close\n");
      else socket.end();
    });
  socket.on("close", () => print({ local, replies }));
}

if (import.meta.main) {
  const [mode = "", ...args] = process.argv.slice(2);
  if (mode === "serve") serve(args.map(Number));
  else if (mode === "connect") request(args[0] ?? "", Number(args[1]), Number(args[2]), args[3] ?? "server");
  else throw new Error(`Unknown mode "${mode}": serve PORT... | connect HOST PORT LOCAL_PORT server|client`);
}
