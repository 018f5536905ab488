/**
 * A connectivity probe for traffic tests, run inside a pod's network
 * namespace: `node probe.js tcp|udp HOST PORT TIMEOUT_MS`. Exits 0 when the
 * echo came back, 1 when it did not in time. `node probe.js hold HOST PORT`
 * keeps one TCP connection open, sends a line whenever one arrives on stdin,
 * and prints "echo" for every reply: the revoked-connection test drives it.
 */
import { createSocket } from "node:dgram";
import { connect, isIP } from "node:net";
import { createInterface } from "node:readline";

const [mode, host = "", portText = "0", timeoutText = "1000"] = process.argv.slice(2);
const port = Number(portText);
const timeout = Number(timeoutText);

function done(ok: boolean): never {
  process.exit(ok ? 0 : 1);
}

if (mode === "tcp") {
  const socket = connect({ host, port, timeout });
  socket.on("connect", () => socket.write("ping"));
  socket.on("data", () => done(true));
  socket.on("timeout", () => done(false));
  socket.on("error", () => done(false));
} else if (mode === "udp") {
  const socket = createSocket(isIP(host) === 6 ? "udp6" : "udp4");
  socket.on("message", () => done(true));
  socket.send("ping", port, host);
  setTimeout(() => done(false), timeout);
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
  process.stderr.write("usage: probe.js tcp|udp|hold HOST PORT [TIMEOUT_MS]\n");
  process.exit(2);
}
