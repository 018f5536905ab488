/**
 * The HTTP load generator of the proxy benchmark: wrk (Debian's package), run
 * in the client pod's network namespace, and the parser of its report
 * (`--latency`: requests per second, the latency percentiles, the error
 * counts).
 *
 * @module
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

/** What one wrk run measured. */
export interface WrkReport {
  requestsPerSecond: number;
  /** Latency percentiles in milliseconds, by percent (50, 75, 90, 99). */
  latencyMs: Map<number, number>;
  /** Requests completed. */
  requests: number;
  /** Socket errors (connect, read, write, timeout) and responses other than 2xx or 3xx. */
  errors: number;
  /** Bytes read per second (`Transfer/sec`, wrk's KB/MB/GB being powers of 1024); 0 without the line. */
  bytesPerSecond: number;
}

/** wrk's output lacked a figure the benchmark needs. */
export class WrkOutputError extends Error {
  override name = "WrkOutputError";
}

const UNIT_BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A wrk duration (`231.00us`, `1.20ms`, `2.00s`, `1.50m`) in milliseconds.
 *
 * @example
 * ```ts
 * parseWrkDuration("231.00us"); // 0.231
 * ```
 */
export function parseWrkDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)$/.exec(text.trim());
  if (match === null) throw new WrkOutputError(`Cannot read wrk duration "${text}": expected a number with us, ms, s, m or h`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

/**
 * Reads wrk's report (run with `--latency`): `Requests/sec`, the latency
 * distribution, the request count, socket errors and non-2xx/3xx responses.
 *
 * @example
 * ```ts
 * const report = parseWrkOutput(stdout);
 * report.latencyMs.get(99); // p99 in ms
 * ```
 * @throws {WrkOutputError} when `Requests/sec` or the latency distribution is missing.
 */
export function parseWrkOutput(output: string): WrkReport {
  const rate = /^Requests\/sec:\s+(\d+(?:\.\d+)?)\s*$/m.exec(output);
  if (rate === null) throw new WrkOutputError(`Cannot read wrk output: no "Requests/sec" line in ${JSON.stringify(output)}`);
  const distribution = output.split("Latency Distribution")[1];
  if (distribution === undefined) throw new WrkOutputError(`Cannot read wrk output: no latency distribution (run wrk with --latency) in ${JSON.stringify(output)}`);
  const latencyMs = new Map<number, number>();
  for (const [, percent, duration] of distribution.matchAll(/^\s+(\d+(?:\.\d+)?)%\s+(\S+)\s*$/gm)) {
    latencyMs.set(Number(percent), parseWrkDuration(duration!));
  }
  if (!latencyMs.has(50) || !latencyMs.has(99)) throw new WrkOutputError(`Cannot read wrk output: the latency distribution lacks 50% or 99% in ${JSON.stringify(output)}`);
  const requests = /^\s+(\d+) requests in /m.exec(output);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  const errors = (socket?.slice(1).reduce((sum, n) => sum + Number(n), 0) ?? 0) + Number(non2xx?.[1] ?? 0);
  const transfer = /^Transfer\/sec:\s+(\d+(?:\.\d+)?)(B|KB|MB|GB|TB)\s*$/m.exec(output);
  const bytesPerSecond = transfer === null ? 0 : Number(transfer[1]) * UNIT_BYTES[transfer[2]!]!;
  return { requestsPerSecond: Number(rate[1]), latencyMs, requests: Number(requests?.[1] ?? 0), errors, bytesPerSecond };
}

/** How wrk drives the server. */
export interface WrkLoad {
  url: string;
  threads: number;
  connections: number;
  durationS: number;
  /** A new connection per request (`Connection: close`) instead of keep-alive. */
  closeEach: boolean;
}

/**
 * The arguments of one wrk run.
 *
 * @example
 * ```ts
 * wrkArgs({ url: "http://10.0.0.3:8080/", threads: 1, connections: 16, durationS: 5, closeEach: true });
 * // ["-t1", "-c16", "-d5s", "--latency", "-H", "Connection: close", "http://10.0.0.3:8080/"]
 * ```
 */
export function wrkArgs(load: WrkLoad): string[] {
  return [
    `-t${load.threads}`,
    `-c${load.connections}`,
    `-d${load.durationS}s`,
    "--latency",
    ...(load.closeEach ? ["-H", "Connection: close"] : []),
    load.url,
  ];
}

/**
 * Runs wrk in the network namespace `netns` (by its /var/run/netns name,
 * with `ip netns exec`, so that a hosts file at /etc/netns/NETNS/hosts
 * resolves the URL's name: wrk sends that name as the TLS server name)
 * and returns its report.
 *
 * @example
 * ```ts
 * const report = await runWrk("pl1a2b3c-client", { url: "http://10.0.0.3:8080/", threads: 1, connections: 16, durationS: 5, closeEach: false });
 * ```
 */
export async function runWrk(netns: string, load: WrkLoad): Promise<WrkReport> {
  const { stdout } = await promisify(execFile)("ip", ["netns", "exec", netns, "wrk", ...wrkArgs(load)], {
    encoding: "utf8",
    timeout: (load.durationS + 30) * 1000,
  });
  return parseWrkOutput(stdout);
}
