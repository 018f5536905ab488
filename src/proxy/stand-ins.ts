/**
 * STAND-INS, to be deleted: the names `palisade proxy` needs from two
 * contracts that have not landed on this branch yet, with their agreed
 * signatures, so that the process builds, runs and is tested end to end on
 * plain sockets meanwhile.
 *
 * - From policy/http-view.ts (the lead): `DEFAULT_HTTP_VIEW_PATH`,
 *   `parseHttpView`, `HttpViewIndex`. The stand-in index refuses every
 *   request (the proxy then fails closed, as with no view at all).
 * - From datapath/ (the kernel engineer): `listenTransparent`,
 *   `connectTransparent`, `DEFAULT_PROXY_PORT`, `PinnedIpcache`. The
 *   stand-ins listen and connect with ordinary sockets (no IP_TRANSPARENT,
 *   no mark, the upstream not bound to the client's address) and know no
 *   identity.
 *
 * Wiring the real ones: in main.ts, import these names from
 * "../policy/http-view.ts" and "../datapath/index.ts" instead, and delete
 * this file.
 *
 * @module
 */
import net from "node:net";

/** The port the datapath steers proxied flows to unless told otherwise. */
export const DEFAULT_PROXY_PORT = 15001;

/** Listens on `port` of every address of `family` (stand-in: an ordinary socket). */
export async function listenTransparent(server: net.Server, options: { family: 4 | 6; port: number }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: options.port, host: options.family === 4 ? "0.0.0.0" : "::", ipv6Only: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Connects to the original destination (stand-in: from any local address, unmarked). */
export async function connectTransparent(options: { family: 4 | 6; localAddress: string; localPort: number; remoteAddress: string; remotePort: number }): Promise<net.Socket> {
  return net.connect({ host: options.remoteAddress, port: options.remotePort, family: options.family });
}

/** The agent's pinned ipcache, read-only (stand-in: knows no address). */
export class PinnedIpcache {
  static open(_pinRoot: string): PinnedIpcache {
    return new PinnedIpcache();
  }

  identityOf(address: string): number {
    throw new Error(`Cannot find the identity of ${address}: the pinned ipcache is not wired yet (stand-in)`);
  }

  close(): void {}
}
