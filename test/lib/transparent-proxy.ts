/**
 * A transparent proxy for the kernel suites, as `palisade proxy` works at
 * the socket level: `node transparent-proxy.js PORT`, run in the node's
 * network namespace, listens with {@linkcode listenTransparent} on PORT for
 * IPv4 and IPv6; for each connection the datapath steers to it, it opens
 * the upstream connection with {@linkcode connectTransparent} from the
 * client's own address and port to the original destination, greets the
 * client with `proxied` (so a test knows the proxy was in the path) and
 * pipes bytes both ways, passing a FIN or an RST on (a client's FIN
 * half-closes: the answer still comes back). One JSON line per
 * event on stdout: `ready`, `accepted`, `upstream` (connected or failed).
 *
 * @module
 */
import { createServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { connectTransparent, listenTransparent } from "../../src/datapath/transparent-socket.ts";

/** This script (compiled). */
export const TRANSPARENT_PROXY_PATH = fileURLToPath(import.meta.url);

function print(record: unknown): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

/** An RST on one side is an RST on the other; a FIN is passed on by pipe(). */
function resetTogether(one: Socket, other: Socket): void {
  one.on("error", () => {
    if (!other.destroyed) other.resetAndDestroy();
  });
}

async function proxy(client: Socket): Promise<void> {
  const family = client.remoteFamily === "IPv6" ? 6 : 4;
  const flow = { client: `${client.remoteAddress} ${client.remotePort}`, destination: `${client.localAddress} ${client.localPort}` };
  print({ accepted: flow });
  client.pause();
  client.on("error", () => undefined);
  try {
    const upstream = await connectTransparent({
      family,
      localAddress: client.remoteAddress ?? "",
      localPort: client.remotePort ?? 0,
      remoteAddress: client.localAddress ?? "",
      remotePort: client.localPort ?? 0,
      timeoutMs: 3000,
    });
    print({ upstream: { ...flow, local: `${upstream.localAddress} ${upstream.localPort}` } });
    resetTogether(client, upstream);
    resetTogether(upstream, client);
    client.write("proxied\n");
    client.pipe(upstream).pipe(client);
    client.resume();
  } catch (error) {
    print({ upstream: { ...flow, error: (error as { code?: string }).code } });
    client.destroy();
  }
}

if (import.meta.main) {
  const port = Number(process.argv[2] ?? "15001");
  const servers = [4, 6] as const;
  await Promise.all(servers.map((family) => listenTransparent(createServer({ allowHalfOpen: true }, (client) => void proxy(client)), { family, port })));
  print({ ready: port });
}
