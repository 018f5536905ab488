/**
 * Runs the connection load generator (connection-load.ts) inside a pod's
 * network namespace for as long as a test disturbs the cluster.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { LoadCounts } from "./connection-load.ts";

export type { LoadCounts } from "./connection-load.ts";

const LOAD_SCRIPT = fileURLToPath(new URL("./connection-load.js", import.meta.url));

/** A load generator running in a pod. */
export interface RunningLoad {
  /** Stops it once every open connection is decided; what it counted. */
  stop(): Promise<LoadCounts>;
}

/**
 * Starts opening a TCP connection to `host`:`port` every `intervalMs` from
 * network namespace `netns`, each given `timeoutMs` to echo.
 *
 * @example
 * ```ts
 * const load = await startLoad("pal1-1-0a1b2c3d", "10.245.2.4", 80, { intervalMs: 20, timeoutMs: 3000 });
 * const counts = await load.stop();
 * ```
 */
export async function startLoad(netns: string, host: string, port: number, options: { intervalMs: number; timeoutMs: number }): Promise<RunningLoad> {
  const child = spawn("ip", ["netns", "exec", netns, process.execPath, LOAD_SCRIPT, host, String(port), String(options.intervalMs), String(options.timeoutMs)], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = once(child, "exit");
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== "started") throw new Error(`The load generator in ${netns} did not start (it printed ${JSON.stringify(first.value)})`);
  return {
    async stop() {
      child.kill("SIGTERM");
      const summary = await lines.next();
      await exited;
      if (typeof summary.value !== "string") throw new Error(`The load generator in ${netns} exited without its counts`);
      return JSON.parse(summary.value) as LoadCounts;
    },
  };
}
