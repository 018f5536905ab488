/**
 * The process standing in for a pod's containers, run inside the pod's
 * network namespace: `node pod-server.js 80/TCP 81/UDP 80/SCTP …`. It echoes
 * what it receives on every declared TCP and UDP port: TCP streams back to
 * the sender, UDP datagrams back to their source (IPv4 and IPv6). SCTP ports
 * are answered by a `palisade-sctp serve` child over raw sockets (the kernel
 * may have no SCTP sockets): an INIT gets an INIT ACK, or an ABORT on a port
 * not served. Prints "ready" once every socket listens and the child is
 * ready; exits if the child dies, and the child dies with it.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { sctpRawBinary } from "./sctp-raw.ts";

/** A port the pod server listens on. */
export interface PodServerPort {
  port: number;
  protocol: "TCP" | "UDP" | "SCTP";
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
    const [port, protocol] = arg.split("/");
    const number = Number(port);
    if (!Number.isInteger(number) || number < 1 || number > 65535 || (protocol !== "TCP" && protocol !== "UDP" && protocol !== "SCTP")) {
      throw new Error(`Cannot serve port "${arg}": expected PORT/TCP, PORT/UDP or PORT/SCTP with PORT 1 to 65535`);
    }
    return { port: number, protocol };
  });
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
function serve(ports: readonly PodServerPort[], ready: () => void): void {
  const sctp = ports.filter((p) => p.protocol === "SCTP").map((p) => p.port);
  let pending = ports.reduce((n, p) => n + (p.protocol === "TCP" ? 1 : p.protocol === "UDP" ? 2 : 0), sctp.length > 0 ? 1 : 0);
  const bound = (): void => {
    if (--pending === 0) ready();
  };
  if (pending === 0) ready();
  if (sctp.length > 0) serveSctp(sctp, bound);
  for (const { port, protocol } of ports) {
    if (protocol === "SCTP") continue;
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
    serve(parsePodServerPorts(process.argv.slice(2)), () => process.stdout.write("ready\n"));
  } catch (error) {
    fail((error as Error).message);
  }
}
