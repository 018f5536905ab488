/**
 * What runs between the two pods of the engine comparison while an engine
 * holds its rules: a server in the server pod, a client in the client pod,
 * and the figure one run of the client gives. Four workloads: the project's
 * own connect loop (connect, 1-byte echo, close), wrk against nginx with a
 * new connection per request and with keep-alive, and iperf3's bulk TCP
 * stream — the last three real tools from Debian, so that the figures can be
 * compared with anyone else's.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { NetnsNode, NetnsPod } from "../../test/lib/kernel.ts";
import type { CleanupStack } from "./cleanup.ts";
import { waitForListener } from "./listener.ts";
import { startNginx } from "./nginx-server.ts";
import { runWrk } from "./wrk.ts";

/** How long a client runs per measurement: a warm-up, then `windows` windows of `windowMs`. */
export interface WorkloadTiming {
  warmupMs: number;
  windowMs: number;
  windows: number;
}

/** One run of a workload's client. */
export interface WorkloadRun {
  /** The figure per window (the connect loop) or for the whole run (the tools), in the workload's unit. */
  values: number[];
  /** Failed or timed-out connections or requests. */
  errors: number;
  /** TCP connections the client opened, when it knows (every connection's SYN meets the policy lookup). */
  started?: number;
}

/** A server and client pair run between the pods. */
export interface PodWorkload {
  /** Short name, as `--workloads` takes it. */
  name: WorkloadName;
  /** What the client does, for headings. */
  title: string;
  /** The unit of {@link WorkloadRun.values}. */
  unit: string;
  /** Debian packages the workload runs. */
  packages: readonly string[];
  /** Starts the server on `port` in `server`; resolves once it listens, with the function that stops it. */
  startServer(cleanup: CleanupStack, node: NetnsNode, server: NetnsPod, port: number): Promise<() => void>;
  /** Runs the client in `client` against `address`:`port` for one measurement. */
  run(node: NetnsNode, client: NetnsPod, address: string, port: number, timing: WorkloadTiming): Promise<WorkloadRun>;
}

/** The workloads' names. */
export const WORKLOAD_NAMES = ["connect", "wrk-close", "wrk-keepalive", "iperf3"] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

/** A client or server of a workload misbehaved. */
export class WorkloadError extends Error {
  override name = "WorkloadError";
}

const connectLoopJs = fileURLToPath(new URL("./connect-loop.js", import.meta.url));
const echoServerJs = fileURLToPath(new URL("./tcp-echo-server.js", import.meta.url));

/** Connections the connect loop keeps in flight. */
const CONNECT_CONCURRENCY = 8;
/** wrk's connections (one thread): enough to keep nginx busy on one core. */
const WRK_CONNECTIONS = 16;

/** The first line a child prints; rejects with its stderr when it exits first. */
async function firstLine(child: ReturnType<NetnsNode["spawnIn"]>, what: string): Promise<string> {
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const newline = stdout.indexOf("\n");
      if (newline >= 0) resolve(stdout.slice(0, newline));
    });
    child.on("exit", (code) => reject(new WorkloadError(`Cannot run the ${what}: it exited (${code}) without output: ${stderr.trim()}`)));
  });
}

/** A scratch folder for a server's files, removed with `cleanup`. */
function scratch(cleanup: CleanupStack, what: string): string {
  const dir = mkdtempSync(`/tmp/palisade-bench-${what}-`);
  cleanup.add(`folder ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const connectEcho: PodWorkload = {
  name: "connect",
  title: `TCP connections per second (the project's connect loop, ${CONNECT_CONCURRENCY} in flight: connect, 1-byte echo, close)`,
  unit: "conn/s",
  packages: [],
  async startServer(cleanup, node, server, port) {
    const echo = node.spawnIn(server, process.execPath, [echoServerJs, String(port)]);
    const stop = cleanup.add(`echo server in ${server.netns}`, () => echo.kill("SIGKILL"));
    if ((await firstLine(echo, "echo server")) !== "ready") throw new WorkloadError("Cannot run the echo server: it did not report ready");
    return stop;
  },
  async run(node, client, address, port, timing) {
    const args = [connectLoopJs, address, String(port), String(CONNECT_CONCURRENCY), String(timing.warmupMs), String(timing.windowMs), String(timing.windows)];
    const report = JSON.parse(await firstLine(node.spawnIn(client, process.execPath, args), "connection client")) as { windowMs: number; completed: number[]; errors: number[]; started: number };
    return { values: report.completed.map((count) => count / (report.windowMs / 1000)), errors: report.errors.reduce((a, b) => a + b, 0), started: report.started };
  },
};

/** wrk against nginx; `closeEach`: a new connection per request. */
function wrkNginx(closeEach: boolean): PodWorkload {
  return {
    name: closeEach ? "wrk-close" : "wrk-keepalive",
    title: `HTTP requests per second, wrk (1 thread, ${WRK_CONNECTIONS} connections) against nginx, ${closeEach ? "a new connection per request" : "keep-alive"}`,
    unit: "req/s",
    packages: ["wrk", "nginx-light"],
    startServer: (cleanup, _node, server, port) => startNginx(cleanup, server.netns, port, scratch(cleanup, "nginx")),
    async run(_node, client, address, port, timing) {
      const load = { url: `http://${address}:${port}/`, threads: 1, connections: WRK_CONNECTIONS, closeEach };
      const warmup = await runWrk(client.netns, { ...load, durationS: Math.max(1, Math.round(timing.warmupMs / 1000)) });
      const report = await runWrk(client.netns, { ...load, durationS: Math.round((timing.windowMs * timing.windows) / 1000) });
      // With a new connection per request, every completed request was one connection (the warm-up's too).
      return { values: [report.requestsPerSecond], errors: report.errors, ...(closeEach ? { started: warmup.requests + report.requests } : {}) };
    },
  };
}

const iperf3: PodWorkload = {
  name: "iperf3",
  title: "TCP bulk throughput, iperf3 (one stream, the first second omitted)",
  unit: "Gbit/s",
  packages: ["iperf3"],
  async startServer(cleanup, node, server, port) {
    const child = node.spawnIn(server, "iperf3", ["--server", "--port", String(port)]);
    const stop = cleanup.add(`iperf3 server in ${server.netns}`, () => child.kill("SIGKILL"));
    await waitForListener(server.netns, port, () => (child.exitCode === null ? undefined : `iperf3 exited with ${child.exitCode}`));
    return stop;
  },
  async run(_node, client, address, port, timing) {
    const seconds = Math.round((timing.windowMs * timing.windows) / 1000);
    const omit = Math.max(1, Math.round(timing.warmupMs / 1000));
    const { stdout } = await promisify(execFile)("ip", ["netns", "exec", client.netns, "iperf3", "--client", address, "--port", String(port), "--time", String(seconds), "--omit", String(omit), "--json"], {
      encoding: "utf8",
      timeout: (seconds + omit + 30) * 1000,
    });
    const report = JSON.parse(stdout) as { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
    const bits = report.end?.sum_received?.bits_per_second;
    if (report.error !== undefined || bits === undefined) throw new WorkloadError(`Cannot read iperf3's report: ${report.error ?? "no end.sum_received.bits_per_second"}`);
    return { values: [bits / 1e9], errors: 0 };
  },
};

/** The workloads by name. */
export const POD_WORKLOADS: Record<WorkloadName, PodWorkload> = {
  connect: connectEcho,
  "wrk-close": wrkNginx(true),
  "wrk-keepalive": wrkNginx(false),
  iperf3,
};
