/**
 * The process standing in for a pod's containers, run inside the pod's
 * network namespace: `node pod-server.js 80/TCP 81/UDP …`. It echoes what
 * it receives on every declared port: TCP streams back to the sender, UDP
 * datagrams back to their source (IPv4 and IPv6). Prints "ready" once every
 * socket listens. Ports of other protocols are refused at start; the node
 * runtime passes only TCP and UDP ports and logs the others (SCTP is not
 * served yet).
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

/** A port the pod server listens on. */
export interface PodServerPort {
  port: number;
  protocol: "TCP" | "UDP";
}

/** Protocols the pod server serves. */
export const POD_SERVER_PROTOCOLS: readonly string[] = ["TCP", "UDP"];

/**
 * Parses the pod server's arguments (`PORT/PROTOCOL`).
 *
 * @example
 * ```ts
 * parsePodServerPorts(["80/TCP", "81/UDP"]); // [{ port: 80, protocol: "TCP" }, { port: 81, protocol: "UDP" }]
 * ```
 */
export function parsePodServerPorts(args: readonly string[]): PodServerPort[] {
  return args.map((arg) => {
    const [port, protocol] = arg.split("/");
    const number = Number(port);
    if (!Number.isInteger(number) || number < 1 || number > 65535 || (protocol !== "TCP" && protocol !== "UDP")) {
      throw new Error(`Cannot serve port "${arg}": expected PORT/TCP or PORT/UDP with PORT 1 to 65535`);
    }
    return { port: number, protocol };
  });
}

/** Listens on every port; calls `ready` once all sockets are bound. */
function serve(ports: readonly PodServerPort[], ready: () => void): void {
  let pending = ports.reduce((n, p) => n + (p.protocol === "TCP" ? 1 : 2), 0);
  const bound = (): void => {
    if (--pending === 0) ready();
  };
  if (pending === 0) ready();
  for (const { port, protocol } of ports) {
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
    serve(parsePodServerPorts(process.argv.slice(2)), () => process.stdout.write("ready\n"));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
}
