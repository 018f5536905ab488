/**
 * HTTP through the node's proxy against the direct path, on the pods of
 * proxied-pods.ts: wrk in the client pod against nginx in the server pod,
 * under three policy sets (none; an L4 allow; an HTTP rule allowing every
 * `GET`, which steers the flow through the proxy), each with keep-alive
 * connections and with a new connection per request. Runs are interleaved
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
import type { AnyPolicy, EBPFNetworkPolicy, HttpRule } from "../../src/policy/index.ts";
import { POD_NAMESPACE, type ProxiedPods } from "./proxied-pods.ts";
import type { QuietGate } from "./quiet-gate.ts";
import { median } from "./stats.ts";
import { runWrk, type WrkReport } from "./wrk.ts";

/** The server's port. */
export const SERVER_PORT = 8080;

/**
 * The client's source ports per case, disjoint: a proxied connection
 * leaves a TIME_WAIT socket in the node namespace with the client's tuple
 * for 60 s, and it answered packets of a later direct connection that
 * reused the tuple (seen as a handful of packets steered to the proxy in
 * the next case's run). Disjoint ranges keep each case's flows its own.
 */
const CLIENT_PORTS: Record<PolicyCase, string> = { none: "1024 22000", l4: "22001 43000", http: "43001 65535" };

function setClientPorts(pods: ProxiedPods, range: string): void {
  execFileSync("ip", ["netns", "exec", pods.client.netns, "sysctl", "-qw", `net.ipv4.ip_local_port_range=${range}`]);
}

/** How long the proxy may take to close the connections of a finished run. */
const PROXY_DRAIN_TIMEOUT_MS = 30_000;

const holderJs = fileURLToPath(new URL("./hold-http-connections.js", import.meta.url));

/** The policy sets compared; "none" is the baseline (direct). */
export type PolicyCase = "none" | "l4" | "http";
/**
 * Keep-alive connections, a new connection per request, or one keep-alive
 * connection: requests one at a time, so latency is the path's own and not
 * the queueing of a saturated process (what "added p50" should compare).
 */
export type ConnectionMode = "keep-alive" | "close" | "one-connection";

/** Every `GET`: the HTTP rule of the proxied case. */
export const ALLOW_GETS: HttpRule[] = [{ method: "GET", path: { prefix: "/" } }];

/** The server's ingress from the client on the server port, with `http` when given. */
function serverIngress(http: HttpRule[] | undefined): EBPFNetworkPolicy {
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: http === undefined ? "l4" : "http", namespace: POD_NAMESPACE },
    spec: {
      selector: { matchLabels: { app: "server" } },
      ingress: [{ action: "Allow", from: [{ podSelector: { matchLabels: { app: "client" } } }], ports: [{ protocol: "TCP", port: SERVER_PORT }], ...(http && { http }) }],
    },
  };
}

/** The policies of each case. */
export const CASE_POLICIES: Record<PolicyCase, AnyPolicy[]> = {
  none: [],
  l4: [serverIngress(undefined)],
  http: [serverIngress(ALLOW_GETS)],
};

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
  policy: PolicyCase;
  mode: ConnectionMode;
  rates: number[];
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

/** The median rate, p50 and p99 of a row. */
export function rowMedians(row: ThroughputRow): { rate: number; p50Ms: number; p99Ms: number } {
  return { rate: median(row.rates), p50Ms: median(row.p50Ms), p99Ms: median(row.p99Ms) };
}

/**
 * Measures every (policy case, connection mode) in interleaved rounds,
 * each round starting one case further; returns the rows in case order.
 *
 * @example
 * ```ts
 * const rows = await measureProxyThroughput(pods, { rounds: 5, threads: 1, connections: 16, durationS: 5, warmupS: 2, attempts: 3 }, gate, console.error);
 * ```
 */
export async function measureProxyThroughput(pods: ProxiedPods, sampling: ThroughputSampling, gate: QuietGate, log: (line: string) => void): Promise<ThroughputRow[]> {
  const cases: PolicyCase[] = ["none", "l4", "http"];
  const modes: ConnectionMode[] = ["keep-alive", "close", "one-connection"];
  const rows = cases.flatMap((policy) =>
    modes.map((mode): ThroughputRow => ({ policy, mode, rates: [], p50Ms: [], p99Ms: [], errors: 0, toProxy: 0n, repeated: 0, disturbedKept: 0 })),
  );
  const url = `http://${pods.server.v4}:${SERVER_PORT}/`;
  const wrk = (mode: ConnectionMode, durationS: number): Promise<WrkReport> =>
    runWrk(pods.client.netns, {
      url,
      threads: sampling.threads,
      connections: mode === "one-connection" ? 1 : sampling.connections,
      durationS,
      closeEach: mode === "close",
    });

  const idleSockets = openSockets(pods.proxy.pid);
  const switchTo = async (policy: PolicyCase) => {
    await waitForIdleProxy(pods.proxy.pid, idleSockets);
    setClientPorts(pods, CLIENT_PORTS[policy]);
    pods.applyPolicies(CASE_POLICIES[policy]);
  };
  for (const policy of cases) {
    await switchTo(policy);
    for (const mode of modes) await wrk(mode, sampling.warmupS);
  }
  log(`http: warmed up (${sampling.warmupS} s per configuration)`);

  for (let round = 0; round < sampling.rounds; round++) {
    log(`http: round ${round + 1} of ${sampling.rounds}`);
    for (let i = 0; i < cases.length; i++) {
      const policy = cases[(round + i) % cases.length]!;
      await switchTo(policy);
      for (const row of rows.filter((r) => r.policy === policy)) {
        for (let attempt = 1; ; attempt++) {
          if (attempt > 1) await gate.waitForQuiet();
          const before = pods.reasons();
          const { result: report, foreignShare } = await gate.measure(() => wrk(row.mode, sampling.durationS));
          const after = pods.reasons();
          const steered = after["to-proxy"] - before["to-proxy"];
          if ((policy === "http") !== steered > 0n) {
            const counted = Object.entries(after).filter(([name, packets]) => packets !== before[name as ReasonName]).map(([name, packets]) => `${name} ${packets - before[name as ReasonName]}`);
            throw new SteeringMismatchError(`Cannot trust the ${policy} ${row.mode} run: ${steered} packets were steered to the proxy (reasons counted: ${counted.join(", ")})`);
          }
          const disturbed = foreignShare > gate.maxForeignShare;
          if (disturbed && attempt < sampling.attempts) {
            log(`http: ${policy} ${row.mode} disturbed (others used ${(foreignShare * 100).toFixed(0)}% of a core): repeating`);
            row.repeated++;
            continue;
          }
          if (disturbed) row.disturbedKept++;
          row.rates.push(report.requestsPerSecond);
          row.p50Ms.push(report.latencyMs.get(50)!);
          row.p99Ms.push(report.latencyMs.get(99)!);
          row.errors += report.errors;
          row.toProxy += steered;
          break;
        }
      }
    }
  }
  return rows;
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
 * Waits until the proxy holds no more sockets than when idle: the
 * connections of the last run are closed, upstream connects still retrying
 * a SYN included (their packets would otherwise show up as steered in the
 * next case's run, which they are: replies to the proxy's upstream sockets).
 */
async function waitForIdleProxy(pid: number, idleSockets: number): Promise<void> {
  const deadline = performance.now() + PROXY_DRAIN_TIMEOUT_MS;
  while (openSockets(pid) > idleSockets) {
    if (performance.now() > deadline) throw new Error(`Cannot measure: the proxy still holds ${openSockets(pid)} sockets ${PROXY_DRAIN_TIMEOUT_MS} ms after a run (${idleSockets} when idle)`);
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
 * while they are idle, then closes them.
 *
 * @example
 * ```ts
 * const { residentKiB } = await measureHeldConnections(pods, 1000);
 * ```
 */
export async function measureHeldConnections(pods: ProxiedPods, count: number): Promise<HeldMemory> {
  // Source ports no proxied connection used yet (see CLIENT_PORTS): the direct case's.
  setClientPorts(pods, CLIENT_PORTS.none);
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
