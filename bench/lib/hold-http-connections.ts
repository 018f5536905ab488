/**
 * The connection holder of the proxy benchmark, run inside the client
 * pod's network namespace: `node hold-http-connections.js HOST PORT COUNT`
 * opens COUNT keep-alive HTTP/1.1 connections (a batch at a time), sends
 * one `GET /` on each and waits for its response head, then prints one
 * JSON line `{"held":…,"failed":…}` and keeps the connections open, idle,
 * until stdin closes or it is killed.
 */
import { connect, type Socket } from "node:net";

const [host = "", portText = "", countText = "1000"] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const BATCH = 50;
const TIMEOUT_MS = 10_000;

const held: Socket[] = [];
let failed = 0;

function open(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, noDelay: true });
    let head = "";
    const fail = () => {
      failed++;
      socket.destroy();
      resolve();
    };
    socket.setTimeout(TIMEOUT_MS, fail);
    socket.once("error", fail);
    socket.once("connect", () => socket.write(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`));
    const onData = (chunk: Buffer) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      socket.setTimeout(0);
      socket.off("error", fail);
      socket.on("error", () => undefined);
      if (head.startsWith("HTTP/1.1 200")) held.push(socket);
      else fail();
      resolve();
    };
    socket.on("data", onData);
  });
}

for (let opened = 0; opened < count; opened += BATCH) {
  await Promise.all(Array.from({ length: Math.min(BATCH, count - opened) }, open));
}
process.stdout.write(`${JSON.stringify({ held: held.length, failed })}\n`);
process.stdin.resume();
process.stdin.on("end", () => {
  for (const socket of held) socket.destroy();
  process.exit(0);
});
