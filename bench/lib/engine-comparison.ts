/**
 * The engines compared between two pods (network namespaces wired like CNI
 * ptp, forwarded by this host), each holding N rules: nothing (the
 * baseline), a linear iptables chain, an nftables set, and the Palisade
 * datapath attached with tcx to both host-side veths. A workload
 * (`pod-workloads.ts`: the connect loop, wrk + nginx, iperf3) runs between
 * the pods under each configuration in interleaved rounds; the median of its
 * figures is the result.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Datapath } from "../../src/datapath/index.ts";
import { attachTcx, closeFd, linkDetach, linkInfo, openObject } from "../../src/datapath/native.ts";
import { DIRECTION_INGRESS, EP_ISOLATED_INGRESS, EP_NO_ANY_PEER_INGRESS, PROTOCOL_NUMBERS, VERDICT_ALLOW } from "../../src/policy/index.ts";
import { NetnsNode, tag, uniquePinRoot, type NetnsPod } from "../../test/lib/kernel.ts";
import { enableBpfStats, programIdsOfLinks, programRunStats } from "./bpf-prog-stats.ts";
import type { CleanupStack } from "./cleanup.ts";
import { installIptablesChain, type ForwardFlow } from "./iptables-chain.ts";
import { installNftablesSet } from "./nftables-set.ts";
import { peerIdentity, writeHostIpcache, writePeerIpcache, writePolicyEntries, writeSyntheticPolicy } from "./palisade-rules.ts";
import type { PodWorkload, WorkloadTiming } from "./pod-workloads.ts";
import { machineBusySeconds, type QuietGate } from "./quiet-gate.ts";
import { seededRandom } from "../../src/conformance/random-cases.ts";
import { median, medianInterval, shuffle } from "./stats.ts";

const CLIENT_V4 = "10.250.0.2";
const SERVER_V4 = "10.250.0.3";
const SERVICE_PORT = 80;
/** Filler rules are spread over this many peers (addresses; identities in Palisade). */
const PEERS = 1000;
const CLIENT_SLOT = 1;
const SERVER_SLOT = 2;
/**
 * Palisade's conntrack timeout for closed flows, shortened from 10 s for the
 * benchmark: the client's kernel reuses a source port one second after its
 * TIME_WAIT (tcp_tw_reuse), and a SYN on a still-remembered tuple would pass
 * as established without the policy lookup being measured.
 */
const CLOSING_TIMEOUT_S = 1;

/** The engines compared; "none" is the baseline, "tcx-empty" the empty program on Palisade's four hooks. */
export type Engine = "none" | "tcx-empty" | "iptables" | "nftables" | "palisade";

/** Rule counts N to measure per engine (the baseline is measured in every round). */
export interface RatePlan {
  /** Whether to measure the empty program attached where Palisade's are: what tcx and a program run cost without Palisade's work. */
  tcxEmpty: boolean;
  iptables: readonly number[];
  nftables: readonly number[];
  palisade: readonly number[];
}

/** How often each configuration is measured, and for how long. */
export interface RateSampling extends WorkloadTiming {
  /** Interleaved rounds over all configurations; each round installs and removes every engine's rules. */
  rounds: number;
  /** Attempts per configuration and round when other programs disturb a run. */
  attempts: number;
  /** Seeds the order of the configurations in each round (a fresh random order per round). */
  seed: number;
  /** Whether the kernel accounts Palisade's programs' run time (bpf-prog-stats.ts): costs some tens of ns per program run. */
  programStats: boolean;
}

/** A row's runs against the baseline run measured right before each. */
export interface PairedRatio {
  /** Median of the runs' ratios (1 = as fast as no engine). */
  median: number;
  /** A distribution-free interval for that median (stats.ts medianInterval). */
  low: number;
  high: number;
  confidence: number;
}

/** What the attached programs (Palisade's, or the empty one) cost per connection, from the kernel's accounting. */
export interface ProgramCost {
  /** Program runs (both programs, both hooks) per connection. */
  runsPerConnection: number;
  /** Their run time per connection, ns. */
  programNsPerConnection: number;
}

/** One configuration's results over all rounds. */
export interface RateRow {
  engine: Engine;
  /** N; 0 for the baseline. */
  rules: number;
  /** The workload's figures (per window or per run) over all rounds. */
  rates: number[];
  medianRate: number;
  /** Failed or timed-out connections or requests over all runs. */
  errors: number;
  /** Runs repeated because other programs used the CPU meanwhile. */
  repeated: number;
  /** Runs kept although disturbed (the last attempt, or the waiting budget was spent). */
  disturbedKept: number;
  /** Palisade only, for workloads that count their connections: new flows its policy lookup allowed, against connections started. */
  policyAllowed?: { allowed: number; started: number };
  /** Per run kept, the median of its figures, in the order measured. */
  runRates: number[];
  /** Against the baseline run measured right before each run; absent for the baseline itself. */
  ratio?: PairedRatio;
  /** For workloads that count their connections: CPU time the whole machine was busy per connection, ns (other programs' included). */
  machineNsPerConnection?: number;
  /** Palisade and the empty program only, with `programStats`, for workloads that count their connections. */
  programCost?: ProgramCost;
}

/** All rows of one workload, the baseline first. */
export interface RateResult {
  workload: { name: string; title: string; unit: string };
  rows: RateRow[];
  /** The baseline's median. */
  baselineRate: number;
}

const EMPTY_OBJECT = fileURLToPath(new URL("../../../bpf/out/empty.bpf.o", import.meta.url));

/** Attaches the empty program with tcx on both hooks of both pods' host-side veths, as Palisade's programs sit. */
function installEmptyPrograms(cleanup: CleanupStack, client: NetnsPod, server: NetnsPod): { programIds: number[]; remove: () => void } {
  const object = openObject(EMPTY_OBJECT);
  const links: number[] = [];
  const remove = cleanup.add("the empty program on the pods' veths", () => {
    for (const link of links) {
      linkDetach(link);
      closeFd(link);
    }
    object.close();
  });
  const programFd = object.program("pal_empty").fd;
  for (const pod of [client, server]) for (const direction of ["ingress", "egress"] as const) links.push(attachTcx(programFd, pod.ifindex, direction));
  return { programIds: [linkInfo(links[0]!).progId], remove };
}

/**
 * Attaches a fresh Palisade datapath to both pods' host-side veths: the
 * client unisolated, the server isolated for ingress with N policy entries,
 * N - 1 fillers plus the one admitting the client on the service port. N = 0:
 * no policy selects either pod, both unisolated, and no policy entries.
 */
function installPalisade(cleanup: CleanupStack, client: NetnsPod, server: NetnsPod, rules: number): { datapath: Datapath; programIds: number[]; remove: () => void } {
  const pinRoot = uniquePinRoot("bench");
  const datapath = Datapath.open({ pinRoot, mapSizes: { policy: rules + 1024, ipcache: PEERS + 1024 } });
  const remove = cleanup.add(`datapath pinned at ${pinRoot}`, () => {
    for (const pod of [client, server]) {
      try {
        datapath.detach(pod.ifindex);
      } catch {
        // The interface is already gone.
      }
    }
    datapath.destroy();
  });
  const clientIdentity = peerIdentity(PEERS);
  const serverIdentity = peerIdentity(PEERS + 1);
  datapath.updateConfig({ ctTimeoutClosingS: CLOSING_TIMEOUT_S });
  writePeerIpcache(datapath, PEERS);
  writeHostIpcache(datapath, [
    { address: client.ipv4, identity: clientIdentity },
    { address: server.ipv4, identity: serverIdentity },
  ]);
  if (rules > 0) {
    writeSyntheticPolicy(datapath, { baseSlot: SERVER_SLOT, peers: PEERS, peerOffset: 0 }, 0, rules - 1);
    writePolicyEntries(datapath, [{
      key: { slot: SERVER_SLOT, identity: clientIdentity, direction: DIRECTION_INGRESS, protocol: PROTOCOL_NUMBERS.TCP, port: SERVICE_PORT, portPrefixLen: 16 },
      value: { verdict: VERDICT_ALLOW, auditVerdict: VERDICT_ALLOW, ruleId: rules, auditRuleId: rules, flags: 0 },
    }]);
  }
  datapath.setEndpoint(client.ifindex, { endpointId: 1, identity: clientIdentity, slot: CLIENT_SLOT, flags: 0 });
  datapath.setEndpoint(server.ifindex, { endpointId: 2, identity: serverIdentity, slot: SERVER_SLOT, flags: rules > 0 ? EP_ISOLATED_INGRESS | EP_NO_ANY_PEER_INGRESS : 0 });
  datapath.attach(client.ifindex, { mode: "tcx" });
  datapath.attach(server.ifindex, { mode: "tcx" });
  const links = [client, server].flatMap((pod) => ["ingress", "egress"].map((direction) => join(pinRoot, "links", `${pod.ifindex}-${direction}`)));
  return { datapath, programIds: programIdsOfLinks(links), remove };
}

/**
 * Builds the two pods and, for each workload in turn, starts its server and
 * measures every configuration of `plan` (and the baseline) in interleaved
 * rounds: each round installs one engine's rules, runs the client, removes
 * them, and moves on, in a fresh random order each round (seeded), so that
 * neither drift on a shared machine nor what ran just before (a large
 * configuration's teardown) favours a row. Before each run the baseline is
 * run once more, and each run is compared with that baseline run: the
 * ratios' median and interval are reported. A run during which other programs used the CPU is repeated (up
 * to `attempts`), after waiting for quiet within the gate's budget.
 *
 * @example
 * ```ts
 * const [result] = await measureEngines(cleanup, { tcxEmpty: true, iptables: [1, 100], nftables: [1, 100], palisade: [1, 100] },
 *   { rounds: 3, warmupMs: 500, windowMs: 1000, windows: 3, attempts: 3, seed: 1, programStats: false }, new QuietGate(0.1, 60_000), console.error, [POD_WORKLOADS.connect]);
 * ```
 */
export async function measureEngines(
  cleanup: CleanupStack,
  plan: RatePlan,
  sampling: RateSampling,
  gate: QuietGate,
  log: (line: string) => void,
  workloads: readonly PodWorkload[],
): Promise<RateResult[]> {
  if (sampling.programStats) enableBpfStats(cleanup);
  const node = new NetnsNode();
  const removeNode = cleanup.add("benchmark pods (network namespaces and veths)", () => node.remove());
  try {
    const client = node.addPod(CLIENT_V4, "fd00:250::2");
    const server = node.addPod(SERVER_V4, "fd00:250::3");
    // Enough source ports that the client never waits for one: the whole
    // range, and TIME_WAIT ports reusable after a second.
    node.execIn(client, "sysctl", ["-qw", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"]);
    const flow: ForwardFlow = { inInterface: client.hostIf, outInterface: server.hostIf, client: CLIENT_V4, server: SERVER_V4, port: SERVICE_PORT };
    const results: RateResult[] = [];
    for (const workload of workloads) {
      const stopServer = await workload.startServer(cleanup, node, server, SERVICE_PORT);
      try {
        results.push(await measureWorkload(cleanup, { node, client, server, flow }, plan, sampling, gate, log, workload));
      } finally {
        stopServer();
      }
    }
    return results;
  } finally {
    removeNode();
  }
}

/** The pods and the flow between them, as the engines see it. */
interface Bench {
  node: NetnsNode;
  client: NetnsPod;
  server: NetnsPod;
  flow: ForwardFlow;
}

async function measureWorkload(
  cleanup: CleanupStack,
  { node, client, server, flow }: Bench,
  plan: RatePlan,
  sampling: RateSampling,
  gate: QuietGate,
  log: (line: string) => void,
  workload: PodWorkload,
): Promise<RateResult> {
  const rows: RateRow[] = [
    { engine: "none" as const, rules: 0 },
    ...(plan.tcxEmpty ? [{ engine: "tcx-empty" as const, rules: 0 }] : []),
    ...plan.iptables.map((rules) => ({ engine: "iptables" as const, rules })),
    ...plan.nftables.map((rules) => ({ engine: "nftables" as const, rules })),
    ...plan.palisade.map((rules) => ({ engine: "palisade" as const, rules })),
  ].map(({ engine, rules }): RateRow => ({ engine, rules, rates: [], medianRate: 0, errors: 0, repeated: 0, disturbedKept: 0, runRates: [] }));
  // Sums over the runs kept, for each Palisade row's program cost.
  const costs = new Map<RateRow, { programNs: number; runs: number; machineNs: number; connections: number }>();

  const measureOnce = async (row: RateRow): Promise<void> => {
    let remove = () => {};
    // The BPF programs the row attaches, and Palisade's datapath.
    let programIds: number[] | undefined;
    let datapath: Datapath | undefined;
    if (row.engine === "tcx-empty") ({ programIds, remove } = installEmptyPrograms(cleanup, client, server));
    if (row.engine === "iptables") remove = installIptablesChain(cleanup, `PLB-${tag()}`, row.rules, flow, PEERS);
    if (row.engine === "nftables") remove = installNftablesSet(cleanup, `plb_${tag()}`, row.rules, flow, PEERS);
    if (row.engine === "palisade") ({ datapath, programIds, remove } = installPalisade(cleanup, client, server, row.rules));
    try {
      let started: number | undefined;
      for (let attempt = 1; ; attempt++) {
        if (attempt > 1) await gate.waitForQuiet();
        await gate.settle();
        const programsBefore = programIds && sampling.programStats ? programRunStats(programIds) : undefined;
        const busyBefore = machineBusySeconds();
        const { result: run, foreignShare } = await gate.measure(() => workload.run(node, client, SERVER_V4, SERVICE_PORT, sampling));
        const busyNs = (machineBusySeconds() - busyBefore) * 1e9;
        if (run.started !== undefined) started = (started ?? 0) + run.started;
        const disturbed = foreignShare > gate.maxForeignShare;
        if (disturbed && attempt < sampling.attempts) {
          log(`${workload.name}: ${row.engine} N=${row.rules} disturbed (others used ${(foreignShare * 100).toFixed(0)}% of a core): repeating`);
          row.repeated++;
          continue;
        }
        if (disturbed) row.disturbedKept++;
        row.rates.push(...run.values);
        row.runRates.push(median(run.values));
        row.errors += run.errors;
        if (run.started !== undefined) {
          const sum = costs.get(row) ?? { programNs: 0, runs: 0, machineNs: 0, connections: 0 };
          if (programsBefore !== undefined && programIds !== undefined) {
            const programsAfter = programRunStats(programIds);
            sum.programNs += programsAfter.runTimeNs - programsBefore.runTimeNs;
            sum.runs += programsAfter.runCount - programsBefore.runCount;
          }
          sum.machineNs += busyNs;
          sum.connections += run.started;
          costs.set(row, sum);
        }
        break;
      }
      if (datapath !== undefined && started !== undefined) {
        // N = 0: every SYN is a new flow at both pods' hooks, admitted as not isolated.
        const stats = datapath.reasonStats();
        const allowed = row.rules > 0 ? Number(stats["policy-allow"].packets) : Number(stats["not-isolated"].packets) / 2;
        row.policyAllowed = { allowed: (row.policyAllowed?.allowed ?? 0) + allowed, started: (row.policyAllowed?.started ?? 0) + started };
      }
    } finally {
      remove();
    }
  };

  const random = seededRandom(sampling.seed);
  const [baseline, ...engines] = rows as [RateRow, ...RateRow[]];
  // Each engine's run is paired with a baseline run right before it: on a shared machine the load moves
  // within seconds, so a baseline measured a round earlier or later says little about this run's conditions.
  const pairedBaseline = new Map<RateRow, number[]>(engines.map((row) => [row, []]));
  for (let round = 0; round < sampling.rounds; round++) {
    log(`${workload.name}: round ${round + 1} of ${sampling.rounds} over ${engines.length} configurations, each after a baseline run`);
    for (const row of shuffle([...engines], random)) {
      await measureOnce(baseline);
      await measureOnce(row);
      pairedBaseline.get(row)!.push(baseline.runRates.at(-1)!);
    }
  }
  for (const row of rows) {
    row.medianRate = median(row.rates);
    if (row !== baseline) {
      const ratios = row.runRates.map((rate, run) => rate / pairedBaseline.get(row)![run]!);
      const { low, high, confidence } = medianInterval(ratios);
      row.ratio = { median: median(ratios), low, high, confidence };
    }
    const cost = costs.get(row);
    if (cost !== undefined && cost.connections > 0) {
      row.machineNsPerConnection = cost.machineNs / cost.connections;
      if ((row.engine === "palisade" || row.engine === "tcx-empty") && sampling.programStats) {
        row.programCost = { runsPerConnection: cost.runs / cost.connections, programNsPerConnection: cost.programNs / cost.connections };
      }
    }
  }
  return { workload: { name: workload.name, title: workload.title, unit: workload.unit }, rows, baselineRate: baseline.medianRate };
}
