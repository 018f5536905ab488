/**
 * The one-shot connectivity probe run inside a pod's network namespace by the
 * traffic tests (`palisade probe` uses the long-lived prober.ts): `node probe-client.js tcp|udp HOST PORT
 * TIMEOUT_MS` sends "ping", prints `connected` and exits 0 when the echo came
 * back; otherwise prints `refused` (RST or ICMP unreachable) or `timeout` and
 * exits 1. `node probe-client.js hold HOST PORT` keeps one TCP connection open,
 * sends a line whenever one arrives on stdin, and prints "echo" for every
 * reply: the revoked-connection test drives it.
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { connect, isIP } from "node:net";
import { createInterface } from "node:readline";

const [mode, host = "", portText = "0", timeoutText = "1000"] = process.argv.slice(2);
const port = Number(portText);
const timeout = Number(timeoutText);

function done(reason: "connected" | "refused" | "timeout"): never {
  process.stdout.write(`${reason}\n`);
  process.exit(reason === "connected" ? 0 : 1);
}

function failure(error: NodeJS.ErrnoException): never {
  done(error.code === "ECONNREFUSED" || error.code === "EHOSTUNREACH" || error.code === "ENETUNREACH" ? "refused" : "timeout");
}

if (mode === "tcp") {
  const socket = connect({ host, port, timeout });
  socket.on("connect", () => socket.write("ping"));
  socket.on("data", () => done("connected"));
  socket.on("timeout", () => done("timeout"));
  socket.on("error", failure);
} else if (mode === "udp") {
  // A connected socket, so that an ICMP port unreachable surfaces as ECONNREFUSED.
  const socket = createSocket(isIP(host) === 6 ? "udp6" : "udp4");
  socket.on("message", () => done("connected"));
  socket.on("error", failure);
  socket.connect(port, host, () => socket.send("ping"));
  setTimeout(() => done("timeout"), timeout);
} else if (mode === "hold") {
  const socket = connect({ host, port });
  socket.on("connect", () => process.stdout.write("connected\n"));
  socket.on("data", () => process.stdout.write("echo\n"));
  socket.on("error", (error) => {
    process.stdout.write(`error ${error.message}\n`);
    process.exit(1);
  });
  createInterface({ input: process.stdin }).on("line", (line) => socket.write(line));
} else {
  process.stderr.write("usage: probe-client.js tcp|udp|hold HOST PORT [TIMEOUT_MS]\n");
  process.exit(2);
}
