/**
 * A TCP and UDP echo server for traffic tests, run inside a pod's network
 * namespace: `node echo-server.js PORT...`. Prints "ready" once listening.
 */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

const ports = process.argv.slice(2).map(Number);
let pending = ports.length * 3;
const ready = () => {
  if (--pending === 0) process.stdout.write("ready\n");
};
for (const port of ports) {
  createServer((socket) => socket.pipe(socket).on("error", () => socket.destroy())).listen({ port, host: "::", ipv6Only: false }, ready);
  for (const type of ["udp4", "udp6"] as const) {
    // The IPv6 socket leaves IPv4 to the udp4 one.
    const udp = createSocket(type === "udp6" ? { type, ipv6Only: true } : { type });
    udp.on("message", (msg, from) => udp.send(msg, from.port, from.address));
    udp.bind(port, type === "udp4" ? "0.0.0.0" : "::", ready);
  }
}
