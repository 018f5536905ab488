/**
 * The connection-rate client, run inside the client pod's network namespace:
 * `node connect-loop.js HOST PORT CONCURRENCY WARMUP_MS WINDOW_MS WINDOWS`.
 * Keeps CONCURRENCY connections in flight, each one a TCP connect, a 1-byte
 * write, the 1-byte echo, and a close; after a warm-up, counts the completed
 * connections in WINDOWS consecutive windows of WINDOW_MS and prints one JSON
 * line: `{"windowMs":…,"completed":[…],"errors":[…],"started":…}` (started
 * counts every connection attempted, warm-up and the last in-flight ones
 * included).
 */
import { connect } from "node:net";

const [host = "", portText = "", concurrencyText = "8", warmupText = "500", windowText = "1000", windowsText = "5"] = process.argv.slice(2);
const port = Number(portText);
const concurrency = Number(concurrencyText);
const warmupMs = Number(warmupText);
const windowMs = Number(windowText);
const windows = Number(windowsText);
const CONNECTION_TIMEOUT_MS = 2000;

const completed = new Array<number>(windows).fill(0);
const errors = new Array<number>(windows).fill(0);
const payload = Buffer.from("x");
const measureFrom = performance.now() + warmupMs;
const measureUntil = measureFrom + windowMs * windows;
let running = concurrency;
let started = 0;

/** Counts an outcome in the window it completed in; warm-up outcomes are not counted. */
function count(into: number[]): void {
  const window = Math.floor((performance.now() - measureFrom) / windowMs);
  if (window >= 0 && window < windows) into[window]! += 1;
}

function next(): void {
  if (performance.now() >= measureUntil) {
    if (--running === 0) process.stdout.write(`${JSON.stringify({ windowMs, completed, errors, started })}\n`);
    return;
  }
  started++;
  const socket = connect({ host, port, noDelay: true });
  let settled = false;
  const settle = (into: number[]) => {
    if (settled) return;
    settled = true;
    count(into);
    socket.destroy();
    next();
  };
  socket.setTimeout(CONNECTION_TIMEOUT_MS, () => settle(errors));
  socket.once("connect", () => socket.write(payload));
  socket.once("data", () => settle(completed));
  socket.once("error", () => settle(errors));
}

for (let i = 0; i < concurrency; i++) next();
