/**
 * HTTP (or HTTPS) through the node's proxy against the direct path, on the
 * pods of proxied-pods.ts: wrk in the client pod against nginx in the server
 * pod, under policy sets compared with the first (direct), each in its
 * connection modes; the HTTP benchmark's three are no policy, an L4 allow,
 * and an HTTP rule allowing every `GET`, which steers the flow through the
 * proxy (bench/tls-proxy.ts has its own). Runs are interleaved
 * over rounds so drift spreads over every row; a run during which other
 * programs used the CPU is repeated. The reason counters around each run
 * show where its packets went: a run whose steering is not what its policy
 * set says fails the measurement. Also the proxy's memory: resident size
 * at start, idle after the load, and holding many idle connections.
 *
 * @module
 */
import { once } from "node:events";
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ReasonName } from "../../src/datapath/index.ts";
import type { AnyPolicy, EBPFIngressRule, EBPFNetworkPolicy, HttpRule } from "../../src/policy/index.ts";
import { BULK_PATH } from "./nginx-server.ts";
import { POD_NAMESPACE, type ProxiedPods, type ProxyProcess } from "./proxied-pods.ts";
import type { QuietGate } from "./quiet-gate.ts";
import { median } from "./stats.ts";
import { runWrk, type WrkReport } from "./wrk.ts";

/** The server's port. */
export const SERVER_PORT = 8080;

/**
 * `count` disjoint ranges of client source ports, one per case: a proxied
 * connection leaves a TIME_WAIT socket in the node namespace with the
 * client's tuple for 60 s, and it answered packets of a later direct
 * connection that reused the tuple (seen as a handful of packets steered to
 * the proxy in the next case's run). Disjoint ranges keep each case's flows
 * its own.
 */
function clientPortRanges(count: number): string[] {
  const first = 1024;
  const size = Math.floor((65535 - first + 1) / count);
  return Array.from({ length: count }, (_, i) => `${first + i * size} ${i === count - 1 ? 65535 : first + (i + 1) * size - 1}`);
}

function setClientPorts(pods: ProxiedPods, range: string): void {
  execFileSync("ip", ["netns", "exec", pods.client.netns, "sysctl", "-qw", `net.ipv4.ip_local_port_range=${range}`]);
}

/** How long the proxy may take to close the connections of a finished run. */
const PROXY_DRAIN_TIMEOUT_MS = 30_000;

const holderJs = fileURLToPath(new URL("./hold-http-connections.js", import.meta.url));

/** The policy sets of the HTTP benchmark; "none" is the baseline (direct). */
export type PolicyCase = "none" | "l4" | "http";
/**
 * Keep-alive connections, a new connection per request, one keep-alive
 * connection (requests one at a time, so latency is the path's own and not
 * the queueing of a saturated process: what "added p50" should compare), or
 * keep-alive connections fetching the server's bulk file (bytes per second).
 */
export type ConnectionMode = "keep-alive" | "close" | "one-connection" | "bulk";

/** Every `GET`: the HTTP rule of the proxied case. */
export const ALLOW_GETS: HttpRule[] = [{ method: "GET", path: { prefix: "/" } }];

/**
 * The server's ingress from the client on `port`, with the rule's `http`
 * and `tls` when given; `name` names the policy.
 *
 * @example
 * ```ts
 * serverIngress("sni", 8443, { tls: { serverNames: ["api.bench.example"] } });
 * ```
 */
export function serverIngress(name: string, port: number, layer7: Pick<EBPFIngressRule, "http" | "tls"> = {}): EBPFNetworkPolicy {
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name, namespace: POD_NAMESPACE },
    spec: {
      selector: { matchLabels: { app: "server" } },
      ingress: [{ action: "Allow", from: [{ podSelector: { matchLabels: { app: "client" } } }], ports: [{ protocol: "TCP", port }], ...layer7 }],
    },
  };
}

/** The policies of each case. */
export const CASE_POLICIES: Record<PolicyCase, AnyPolicy[]> = {
  none: [],
  l4: [serverIngress("l4", SERVER_PORT)],
  http: [serverIngress("http", SERVER_PORT, { http: ALLOW_GETS })],
};

/**
 * One policy set of a comparison: how the table names it, its policies,
 * whether its flows must go through the proxy (checked on every run), the
 * URL wrk asks and the connection modes measured. The first case of a
 * comparison is its baseline (direct).
 */
export interface ThroughputCase {
  label: string;
  policies: AnyPolicy[];
  proxied: boolean;
  url: string;
  modes: ConnectionMode[];
  /** The process the datapath steers proxied flows to; the proxy by default. */
  target?: ProxyProcess;
}

/**
 * The HTTP benchmark's cases: no policy, an L4 allow, the HTTP rule steered
 * to `relay` in the proxy's place (the ceiling of one Node.js process there;
 * keep-alive only) and the HTTP rule through the proxy, the others each in
 * three modes.
 *
 * @example
 * ```ts
 * const cases = httpCases(pods, await pods.startRelay(DEFAULT_PROXY_PORT + 1));
 * ```
 */
export function httpCases(pods: ProxiedPods, relay: ProxyProcess): ThroughputCase[] {
  const url = `http://${pods.server.v4}:${SERVER_PORT}/`;
  const modes: ConnectionMode[] = ["keep-alive", "close", "one-connection"];
  return [
    { label: "no policy (direct)", policies: CASE_POLICIES.none, proxied: false, url, modes },
    { label: "L4 allow", policies: CASE_POLICIES.l4, proxied: false, url, modes },
    // Keep-alive only, the mode of the target: after its runs with a new connection per request the relay
    // held connections past the drain wait, and wrk -c1 through it hung twice (causes not found yet).
    { label: "TCP relay (ceiling)", policies: CASE_POLICIES.http, proxied: true, url, modes: ["keep-alive"], target: relay },
    { label: "HTTP rule (proxied)", policies: CASE_POLICIES.http, proxied: true, url, modes },
  ];
}

/** How wrk drives the server and how often each configuration is measured. */
export interface ThroughputSampling {
  rounds: number;
  threads: number;
  connections: number;
  durationS: number;
  /** One unrecorded run per configuration before the rounds. */
  warmupS: number;
  /** Attempts per configuration and round when other programs disturb a run. */
  attempts: number;
}

/** One configuration over all rounds. */
export interface ThroughputRow {
  /** The case's label. */
  policy: string;
  /** Whether the case is the comparison's baseline. */
  direct: boolean;
  mode: ConnectionMode;
  rates: number[];
  bytesPerSecond: number[];
  p50Ms: number[];
  p99Ms: number[];
  errors: number;
  /** Packets the datapath steered to the proxy during the recorded runs. */
  toProxy: bigint;
  repeated: number;
  disturbedKept: number;
}

/** The measurement wrong: steering did not match the case's policies. */
export class SteeringMismatchError extends Error {
  override name = "SteeringMismatchError";
}

/** The median rate, bytes per second, p50 and p99 of a row. */
export function rowMedians(row: ThroughputRow): { rate: number; bytesPerSecond: number; p50Ms: number; p99Ms: number } {
  return { rate: median(row.rates), bytesPerSecond: median(row.bytesPerSecond), p50Ms: median(row.p50Ms), p99Ms: median(row.p99Ms) };
}

/**
 * Measures every (case, connection mode) in interleaved rounds, each round
 * starting one case further; returns the rows in case order.
 *
 * @example
 * ```ts
 * const rows = await measureThroughput(pods, httpCases(pods, relay), sampling, gate, console.error);
 * ```
 */
export async function measureThroughput(
  pods: ProxiedPods,
  cases: readonly ThroughputCase[],
  sampling: ThroughputSampling,
  gate: QuietGate,
  log: (line: string) => void,
): Promise<ThroughputRow[]> {
  const ports = clientPortRanges(cases.length);
  const rowsOf = cases.map((c, i) =>
    c.modes.map((mode): ThroughputRow => ({ policy: c.label, direct: i === 0, mode, rates: [], bytesPerSecond: [], p50Ms: [], p99Ms: [], errors: 0, toProxy: 0n, repeated: 0, disturbedKept: 0 })),
  );
  const wrk = (c: ThroughputCase, mode: ConnectionMode, durationS: number): Promise<WrkReport> =>
    runWrk(pods.client.netns, {
      url: mode === "bulk" ? new URL(BULK_PATH, c.url).href : c.url,
      threads: sampling.threads,
      connections: mode === "one-connection" ? 1 : sampling.connections,
      durationS,
      closeEach: mode === "close",
    });

  const targets = [...new Set([pods.proxy, ...cases.map((c) => c.target ?? pods.proxy)])].map((target) => ({ target, idleSockets: openSockets(target.pid) }));
  const switchTo = async (i: number) => {
    for (const { target, idleSockets } of targets) await waitForIdleProxy(target, idleSockets);
    setClientPorts(pods, ports[i]!);
    pods.steerTo(cases[i]!.target ?? pods.proxy);
    pods.applyPolicies(cases[i]!.policies);
  };
  for (const [i, c] of cases.entries()) {
    await switchTo(i);
    for (const mode of c.modes) await wrk(c, mode, sampling.warmupS);
  }
  log(`throughput: warmed up (${sampling.warmupS} s per configuration)`);

  for (let round = 0; round < sampling.rounds; round++) {
    log(`throughput: round ${round + 1} of ${sampling.rounds}`);
    for (let k = 0; k < cases.length; k++) {
      const i = (round + k) % cases.length;
      const c = cases[i]!;
      await switchTo(i);
      for (const row of rowsOf[i]!) {
        for (let attempt = 1; ; attempt++) {
          if (attempt > 1) await gate.waitForQuiet();
          const before = pods.reasons();
          const { result: report, foreignShare } = await gate.measure(() => wrk(c, row.mode, sampling.durationS));
          const after = pods.reasons();
          const steered = after["to-proxy"] - before["to-proxy"];
          if (c.proxied !== steered > 0n) {
            const counted = Object.entries(after).filter(([name, packets]) => packets !== before[name as ReasonName]).map(([name, packets]) => `${name} ${packets - before[name as ReasonName]}`);
            throw new SteeringMismatchError(`Cannot trust the "${c.label}" ${row.mode} run: ${steered} packets were steered to the proxy (reasons counted: ${counted.join(", ")})`);
          }
          const disturbed = foreignShare > gate.maxForeignShare;
          if (disturbed && attempt < sampling.attempts) {
            log(`throughput: "${c.label}" ${row.mode} disturbed (others used ${(foreignShare * 100).toFixed(0)}% of a core): repeating`);
            row.repeated++;
            continue;
          }
          if (disturbed) row.disturbedKept++;
          row.rates.push(report.requestsPerSecond);
          row.bytesPerSecond.push(report.bytesPerSecond);
          row.p50Ms.push(report.latencyMs.get(50)!);
          row.p99Ms.push(report.latencyMs.get(99)!);
          row.errors += report.errors;
          row.toProxy += steered;
          break;
        }
      }
    }
  }
  return rowsOf.flat();
}

/** A process's open sockets (file descriptors that are sockets). */
function openSockets(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
    } catch {
      return false; // closed meanwhile
    }
  }).length;
}

/**
 * Waits until the proxy (or the relay) holds no more sockets than when idle: the
 * connections of the last run are closed, upstream connects still retrying
 * a SYN included (their packets would otherwise show up as steered in the
 * next case's run, which they are: replies to the proxy's upstream sockets).
 */
async function waitForIdleProxy({ pid, port }: ProxyProcess, idleSockets: number): Promise<void> {
  const deadline = performance.now() + PROXY_DRAIN_TIMEOUT_MS;
  while (openSockets(pid) > idleSockets) {
    if (performance.now() > deadline) throw new Error(`Cannot measure: the process listening on ${port} (pid ${pid}) still holds ${openSockets(pid)} sockets ${PROXY_DRAIN_TIMEOUT_MS} ms after a run (${idleSockets} when idle)`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A process's resident set size in KiB (VmRSS). */
export function residentKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`Cannot read the resident size of process ${pid}: no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** The proxy's memory while it holds idle connections. */
export interface HeldMemory {
  /** Connections the holder kept open (each answered once through the proxy). */
  held: number;
  failed: number;
  residentKiB: number;
  /** The proxy's open sockets meanwhile (a client and an upstream socket per connection, and its listeners). */
  openSockets: number;
}

/**
 * Under the HTTP case, opens `count` keep-alive connections from the client
 * through the proxy (one request each), reads the proxy's resident size
 * while they are idle, then closes them; `cases` are those measured before,
 * whose source ports it keeps clear of.
 *
 * @example
 * ```ts
 * const { residentKiB } = await measureHeldConnections(pods, cases, 1000);
 * ```
 */
export async function measureHeldConnections(pods: ProxiedPods, cases: readonly ThroughputCase[], count: number): Promise<HeldMemory> {
  // Source ports no proxied connection of `cases` used (see clientPortRanges): the direct case's.
  setClientPorts(pods, clientPortRanges(cases.length)[0]!);
  pods.steerTo(pods.proxy);
  pods.applyPolicies(CASE_POLICIES.http);
  const holder = spawn("nsenter", [`--net=/var/run/netns/${pods.client.netns}`, process.execPath, holderJs, pods.server.v4, String(SERVER_PORT), String(count)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const exited = once(holder, "exit");
  try {
    const [line] = (await Promise.race([once(holder.stdout, "data"), exited.then(() => [Buffer.from("")])])) as [Buffer];
    if (line.length === 0) throw new Error("Cannot hold connections through the proxy: the holder exited without a report");
    const { held, failed } = JSON.parse(line.toString()) as { held: number; failed: number };
    // Let the proxy settle (timers, allocations of the last connections) before reading.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return { held, failed, residentKiB: residentKiB(pods.proxy.pid), openSockets: openSockets(pods.proxy.pid) };
  } finally {
    holder.stdin.end();
    const timer = setTimeout(() => holder.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}
