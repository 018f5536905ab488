/**
 * A held TCP connection for the kernel suites, as a script run inside a
 * pod's network namespace: `node hold-connection.js HOST PORT` connects,
 * prints `connected`, sends each line that arrives on stdin and prints
 * `echo` for every reply, so a test can tell an established connection
 * that still carries data from one a policy change revoked.
 * {@linkcode waitForLine} follows its output.
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** This script (compiled), for `node HOLD_CONNECTION_PATH HOST PORT`. */
export const HOLD_CONNECTION_PATH = fileURLToPath(import.meta.url);

/**
 * Resolves when `child` prints the line `line`; rejects if it exits first.
 *
 * @example
 * ```ts
 * const holder = cluster.spawnIn(pod, process.execPath, [HOLD_CONNECTION_PATH, "10.201.0.3", "80"]);
 * await waitForLine(holder, "connected");
 * ```
 */
export function waitForLine(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      if (buffer.split("\n").includes(line)) {
        child.off("exit", onExit);
        child.stdout!.off("data", onData);
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`process exited (${code}) before printing "${line}": ${buffer}`));
    child.stdout!.on("data", onData);
    child.once("exit", onExit);
  });
}

if (import.meta.main) {
  const [host = "", port = "0"] = process.argv.slice(2);
  const socket = connect({ host, port: Number(port) });
  socket.on("connect", () => process.stdout.write("connected\n"));
  socket.on("data", () => process.stdout.write("echo\n"));
  socket.on("error", (error) => {
    process.stdout.write(`error ${error.message}\n`);
    process.exit(1);
  });
  createInterface({ input: process.stdin }).on("line", (line) => socket.write(line));
}
