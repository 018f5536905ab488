/**
 * A byte relay run as its own process: `node socket-relay.js LISTEN CONNECT`.
 *
 * - LISTEN and CONNECT each a Unix socket path (starting with `/`) or a TCP
 *   port on 127.0.0.1. A path in the file system is reachable from every
 *   network namespace, so two relays (one in each) carry a connection
 *   across namespaces: the TLS benchmark's proxy, in the node namespace,
 *   reaches the API server on the host's loopback this way, at the same
 *   address, so the API server's certificate still matches.
 * - LISTEN `transparent:PORT` and CONNECT `original`: the node proxy's
 *   place without its work. It listens as `palisade proxy` does (the
 *   native addon's IP_TRANSPARENT listener, IPv4 and IPv6, the proxy's
 *   mark) and opens each upstream connection as it does (from the client's
 *   address and port to the original destination), then only passes bytes
 *   on: the HTTP benchmark's ceiling of one Node.js process there.
 *
 * @module
 */
import net from "node:net";
import { connectTransparent, listenTransparent } from "../../src/datapath/index.ts";

/** Where the relay listens: a Unix socket path, a loopback port, or the proxy's transparent port. */
type Listen = { path: string } | { port: number } | { transparentPort: number };
/** Where it connects: a Unix socket path, a loopback port, or each connection's original destination. */
type Connect = { path: string } | { port: number } | "original";

function port(text: string | undefined, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`Cannot relay: ${what} "${text}" is neither a socket path nor a port`);
  return n;
}

function parseListen(text: string | undefined): Listen {
  if (text?.startsWith("/")) return { path: text };
  if (text?.startsWith("transparent:")) return { transparentPort: port(text.slice("transparent:".length), "the transparent port in LISTEN") };
  return { port: port(text, "LISTEN") };
}

function parseConnect(text: string | undefined): Connect {
  if (text === "original") return "original";
  if (text?.startsWith("/")) return { path: text };
  return { port: port(text, "CONNECT") };
}

function open(connect: Connect, client: net.Socket): Promise<net.Socket> {
  if (connect !== "original") return Promise.resolve("path" in connect ? net.connect(connect.path) : net.connect(connect.port, "127.0.0.1"));
  return connectTransparent({
    family: net.isIPv6(client.remoteAddress ?? "") ? 6 : 4,
    localAddress: client.remoteAddress ?? "",
    localPort: client.remotePort ?? 0,
    remoteAddress: client.localAddress ?? "",
    remotePort: client.localPort ?? 0,
    // As palisade proxy bounds its upstream connect (UPSTREAM_CONNECT_TIMEOUT_MS in src/proxy/main.ts).
    timeoutMs: 10_000,
  });
}

const listen = parseListen(process.argv[2]);
const connect = parseConnect(process.argv[3]);
const relay = (client: net.Socket) => {
  let upstream: net.Socket | undefined;
  client.on("error", () => upstream?.destroy());
  // Bytes the client sends meanwhile wait in its (paused) stream.
  open(connect, client).then(
    (socket) => {
      upstream = socket;
      if (client.destroyed) {
        socket.destroy();
        return;
      }
      client.pipe(socket).pipe(client);
      socket.on("error", () => client.destroy());
    },
    () => client.destroy(),
  );
};
if ("transparentPort" in listen) {
  for (const family of [4, 6] as const) await listenTransparent(net.createServer(relay), { family, port: listen.transparentPort });
} else {
  const server = net.createServer(relay);
  if ("path" in listen) server.listen(listen.path);
  else server.listen(listen.port, "127.0.0.1");
}
