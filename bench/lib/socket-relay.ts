/**
 * A byte relay between a TCP port and a Unix socket, run as its own process:
 * `node socket-relay.js LISTEN CONNECT`, each either a Unix socket path
 * (starting with `/`) or a TCP port on 127.0.0.1. A path in the file system
 * is reachable from every network namespace, so two relays (one in each)
 * carry a connection across namespaces: the TLS benchmark's proxy, in the
 * node namespace, reaches the API server on the host's loopback this way,
 * at the same address, so the API server's certificate still matches.
 *
 * @module
 */
import net from "node:net";

type Endpoint = string | number;

function endpoint(text: string | undefined): Endpoint {
  if (text?.startsWith("/")) return text;
  const port = Number(text);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`Cannot relay: "${text}" is neither a socket path nor a port`);
  return port;
}

const listen = endpoint(process.argv[2]);
const connect = endpoint(process.argv[3]);
const server = net.createServer((client) => {
  const upstream = typeof connect === "string" ? net.connect(connect) : net.connect(connect, "127.0.0.1");
  client.pipe(upstream).pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
if (typeof listen === "string") server.listen(listen);
else server.listen(listen, "127.0.0.1");
