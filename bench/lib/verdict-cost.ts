/**
 * Verdict cost per packet of `pal_to_pod`, from the kernel's own per-run
 * duration (BPF_PROG_TEST_RUN), over a grid of policy map sizes N and
 * identity counts K, for a new flow (conntrack miss: ipcache and policy
 * lookups plus the conntrack insert) and an established one (conntrack hit),
 * next to the empty program `pal_empty` as the floor.
 *
 * On a shared 2-core VM the same configuration measured twice in a row
 * differs by up to 20%, more than the effect under study. So for each K all
 * N are loaded at once (one datapath each) and measured in interleaved
 * rounds, the empty program among them; slow drift then hits every column
 * alike instead of masquerading as growth with N. A round during which
 * other programs used the CPU is discarded and repeated.
 *
 * Every measured packet is checked: the program must pass it, and each
 * datapath's reason counters must show exactly the expected number of
 * policy-allowed new flows and established hits, so the table can never
 * report the cost of a path other than the one it names.
 *
 * The same rounds also measure what an entry's TCP flags cost
 * ({@link measureEntryFlagCost}): the entry admitting the measured flow
 * plain, `tcp.strict`, or limited (both connection limits set, so high
 * that no flow is refused), one datapath each, side by side.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Datapath } from "../../src/datapath/index.ts";
import { openObject, testRun, type BpfObject } from "../../src/datapath/native.ts";
import { EP_ISOLATED_INGRESS, EP_NO_ANY_PEER_INGRESS, POLICY_FLAG_TCP_LIMITED, POLICY_FLAG_TCP_STRICT, type TcpLimits } from "../../src/policy/index.ts";
import { run, tag, uniquePinRoot } from "../../test/lib/kernel.ts";
import { buildPacket } from "../../test/lib/packets.ts";
import type { CleanupStack } from "./cleanup.ts";
import { peerIdentity, syntheticPolicyEntry, writePeerIpcache, writePolicyEntries, writeSyntheticPolicy, type SyntheticPolicyLayout } from "./palisade-rules.ts";
import type { QuietGate } from "./quiet-gate.ts";
import { median, quantile } from "./stats.ts";
import { peerAddress, syntheticRule } from "./synthetic-rules.ts";

const TC_ACT_OK = 0;
const POD_ADDRESS = "10.200.0.1";
const ENDPOINT_SLOT = 1;
const FIRST_SOURCE_PORT = 1024;
const EMPTY_OBJECT = fileURLToPath(new URL("../../../bpf/out/empty.bpf.o", import.meta.url));

/**
 * How the entry admitting the measured flow is flagged (the fillers are
 * always plain): `strict` carries `tcp.strict`, `limited` both connection
 * limits ({@link UNREACHED_LIMITS}).
 */
export type ProbeEntryKind = "plain" | "strict" | "limited";

/**
 * The limited entry's limits: a connection count and a rate (1 ns apart,
 * a 2 s burst) no measurement reaches, so every flow pays both charges
 * and none is refused.
 */
export const UNREACHED_LIMITS: TcpLimits = { maxConnections: 2 ** 31 - 1, rate: 1_000_000_000, burst: 2 ** 31 - 1 };

/** One row of the grid: K identities, and the policy map sizes N to measure with them. */
export interface VerdictGridRow {
  identities: number;
  ruleCounts: readonly number[];
}

/** How many samples to take, per cell. */
export interface VerdictSampling {
  /** Interleaved rounds over all cells of one K. */
  rounds: number;
  /** New-flow runs per cell and round (repeat 1 each, a fresh source port each), and as many one-shot established runs. */
  newFlowPerRound: number;
  /** Runs per established sample (one sample per cell and round; the kernel reports their average). */
  establishedRepeat: number;
  /** Attempts per round when other programs disturb it (its samples are then discarded). */
  attempts: number;
}

/** Medians of one measured configuration, in nanoseconds per packet, and the new-flow quartiles. */
export interface VerdictCost {
  newFlowNs: number;
  newFlowQ1Ns: number;
  newFlowQ3Ns: number;
  /**
   * The established flow run once per call, like a new flow: the part of the
   * new-flow cost that is one-shot overhead (timer, cold cache lines) rather
   * than the lookups and the insert.
   */
  establishedOneShotNs: number;
  /** The established flow, averaged over many repeats per call. */
  establishedNs: number;
}

/** One cell of the grid. */
export interface VerdictCell extends VerdictCost {
  identities: number;
  rules: number;
}

/** Rounds discarded or kept although other programs used the CPU meanwhile. */
interface Disturbance {
  /** Rounds discarded and repeated because other programs used the CPU meanwhile. */
  repeatedRounds: number;
  /** Rounds kept although disturbed (the last attempt). */
  disturbedRoundsKept: number;
}

/** The whole verdict-cost measurement. */
export interface VerdictResult extends Disturbance {
  /** The empty program, measured the same two ways in every K's rounds. */
  floor: VerdictCost;
  cells: VerdictCell[];
}

/** One kind of probe entry, measured at one N and K. */
export interface EntryFlagRow extends VerdictCost {
  kind: ProbeEntryKind;
}

/** The entry-flag measurement: every kind at the same N and K, in the same rounds. */
export interface EntryFlagResult extends Disturbance {
  identities: number;
  rules: number;
  floor: VerdictCost;
  rows: EntryFlagRow[];
}

/** The datapath took a path other than the one being measured. */
export class VerdictPathError extends Error {
  override name = "VerdictPathError";
}

/** Something measured in the rounds: the empty program, or one datapath. */
interface Subject {
  label: string;
  newFlowSamples: number[];
  establishedOneShotSamples: number[];
  establishedSamples: number[];
  /** One run of a flow never seen before; returns the kernel's duration. */
  runNewFlow(): number;
  /** `repeat` runs of one tracked flow; returns the kernel's average duration. */
  runEstablished(repeat: number): number;
}

/**
 * A veth pair to bind test-run packets to: the program looks its endpoint up
 * by the skb's ifindex, which must be a real device (veth rather than dummy,
 * which not every kernel build has).
 */
function createTestInterface(cleanup: CleanupStack): { ifindex: number; remove: () => void } {
  const name = `plb${tag()}`;
  run("ip", ["link", "add", name, "type", "veth", "peer", "name", `${name}p`]);
  const remove = cleanup.add(`veth ${name}`, () => run("ip", ["link", "del", name]));
  return { ifindex: Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim()), remove };
}

function synPacket(src: string, sport: number, dport: number): Buffer {
  return buildPacket({ src, dst: POD_ADDRESS, protocol: "TCP", sport, dport, tcpFlags: ["syn"] });
}

function expectPass(retval: number, what: string): void {
  if (retval !== TC_ACT_OK) throw new VerdictPathError(`Cannot measure ${what}: the program returned ${retval}, expected ${TC_ACT_OK} (pass)`);
}

function emptySubject(object: BpfObject, ifindex: number): Subject {
  const fd = object.program("pal_empty").fd;
  const packet = synPacket(peerAddress(0), FIRST_SOURCE_PORT, FIRST_SOURCE_PORT);
  const once = (repeat: number) => {
    const result = testRun(fd, packet, { ifindex, repeat });
    expectPass(result.retval, "the empty program");
    return result.durationNs;
  };
  return { label: "empty program", newFlowSamples: [], establishedOneShotSamples: [], establishedSamples: [], runNewFlow: () => once(1), runEstablished: once };
}

/**
 * A datapath holding K ipcache entries, an ingress-isolated endpoint and N
 * policy entries; rule 0 admits the probe flow (TCP from the middle peer to
 * the first filler port), flagged as `kind` says. Counts what it runs, to
 * check the reason counters.
 */
class DatapathSubject implements Subject {
  readonly label: string;
  readonly newFlowSamples: number[] = [];
  readonly establishedOneShotSamples: number[] = [];
  readonly establishedSamples: number[] = [];
  readonly #datapath: Datapath;
  readonly #ifindex: number;
  readonly #probe: { address: string; port: number };
  readonly #establishedPacket: Buffer;
  readonly #kind: ProbeEntryKind;
  readonly #probeRuleId: number;
  #nextPort = FIRST_SOURCE_PORT;
  #newFlows = 0;
  #establishedRuns = 0;

  constructor(datapath: Datapath, ifindex: number, layout: SyntheticPolicyLayout, label: string, kind: ProbeEntryKind) {
    this.#datapath = datapath;
    this.#ifindex = ifindex;
    this.label = label;
    this.#kind = kind;
    const rule0 = syntheticRule(0, layout.peers, layout.peerOffset);
    this.#probe = { address: peerAddress(rule0.peer), port: rule0.port };
    const entry = syntheticPolicyEntry(0, layout);
    this.#probeRuleId = entry.value.ruleId;
    // The established flow is opened by a SYN and measured by the peer's ACK on it, as a connection's
    // segments are (a SYN sent again would take conntrack's full path, not the programs' fast path). It
    // is never answered, so its entry keeps the SYN timeout, which must outlast the quiet gate's waits
    // (up to its whole budget) or the flow expires between rounds.
    datapath.updateConfig({ ctTimeoutSynS: 3600 });
    if (kind === "limited") datapath.maps.tcpLimits.upsert([[entry.value.ruleId, UNREACHED_LIMITS]]);
    if (kind !== "plain") {
      const flags = kind === "strict" ? POLICY_FLAG_TCP_STRICT : POLICY_FLAG_TCP_LIMITED;
      writePolicyEntries(datapath, [{ key: entry.key, value: { ...entry.value, flags } }]);
    }
    const sport = this.#takePort();
    this.#runNewFlowPacket(synPacket(this.#probe.address, sport, this.#probe.port), "the first packet of the established flow");
    this.#establishedPacket = buildPacket({ src: this.#probe.address, dst: POD_ADDRESS, protocol: "TCP", sport, dport: this.#probe.port, tcpFlags: ["ack"] });
  }

  #takePort(): number {
    if (this.#nextPort > 65535) throw new VerdictPathError(`Cannot measure a new flow at ${this.label}: source ports for fresh flows are used up`);
    return this.#nextPort++;
  }

  #runNewFlowPacket(packet: Buffer, what: string): number {
    const result = this.#datapath.testRun("to-pod", packet, { ifindex: this.#ifindex, repeat: 1 });
    expectPass(result.retval, `${what} at ${this.label}`);
    this.#newFlows++;
    return result.durationNs;
  }

  runNewFlow(): number {
    return this.#runNewFlowPacket(synPacket(this.#probe.address, this.#takePort(), this.#probe.port), "a new flow");
  }

  runEstablished(repeat: number): number {
    const result = this.#datapath.testRun("to-pod", this.#establishedPacket, { ifindex: this.#ifindex, repeat });
    expectPass(result.retval, `the established flow at ${this.label}`);
    this.#establishedRuns += repeat;
    return result.durationNs;
  }

  /**
   * Throws unless every new flow went through the policy lookup and every
   * established run hit conntrack; a strict entry's flows must be tracked
   * as strict, and a limited entry's source must hold one connection per
   * new flow.
   */
  verifyPaths(): void {
    const stats = this.#datapath.reasonStats();
    const flows = this.#datapath.conntrackEntries().filter((entry) => entry.flow.dport === this.#probe.port);
    const strictFlows = flows.filter((entry) => entry.value.tcpStrict).length;
    const counted = this.#datapath.maps.tcpSources
      .entries()
      .filter(([key]) => key.ruleId === this.#probeRuleId)
      .reduce((sum, [, value]) => sum + Number(value.conns), 0);
    const checks: [string, bigint | number, number][] = [
      ["policy-allowed new flows", stats["policy-allow"].packets, this.#newFlows],
      ["established conntrack hits", stats.established.packets, this.#establishedRuns],
      ["strict tracked flows", strictFlows, this.#kind === "strict" ? flows.length : 0],
      ["connections counted under the limits", counted, this.#kind === "limited" ? this.#newFlows : 0],
    ];
    for (const [what, actual, expected] of checks) {
      if (BigInt(actual) !== BigInt(expected)) {
        throw new VerdictPathError(`Cannot trust the measurement at ${this.label}: ${actual} ${what}, expected ${expected}`);
      }
    }
  }
}

function summarize(subject: Subject): VerdictCost {
  return {
    newFlowNs: median(subject.newFlowSamples),
    newFlowQ1Ns: quantile(subject.newFlowSamples, 0.25),
    newFlowQ3Ns: quantile(subject.newFlowSamples, 0.75),
    establishedOneShotNs: median(subject.establishedOneShotSamples),
    establishedNs: median(subject.establishedSamples),
  };
}

/** Lets the event loop run, so a signal handler can clean up promptly during long measurements. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One round over `subjects`, starting with subject `first`, so no subject always goes first. */
async function measureRound(subjects: readonly Subject[], first: number, sampling: VerdictSampling): Promise<void> {
  for (let i = 0; i < subjects.length; i++) {
    const subject = subjects[(first + i) % subjects.length]!;
    for (let sample = 0; sample < sampling.newFlowPerRound; sample++) {
      subject.newFlowSamples.push(subject.runNewFlow());
      subject.establishedOneShotSamples.push(subject.runEstablished(1));
    }
    subject.establishedSamples.push(subject.runEstablished(sampling.establishedRepeat));
    await yieldToEventLoop();
  }
}

/**
 * Runs the rounds; a round during which other programs used the CPU has its
 * samples discarded and is repeated after waiting for quiet (up to
 * `attempts`). Returns how many rounds were repeated and kept disturbed.
 */
async function measureInRounds(subjects: readonly Subject[], sampling: VerdictSampling, gate: QuietGate): Promise<{ repeated: number; disturbedKept: number }> {
  let repeated = 0;
  let disturbedKept = 0;
  for (let round = 0; round < sampling.rounds; round++) {
    for (let attempt = 1; ; attempt++) {
      const lists = subjects.flatMap((subject) => [subject.newFlowSamples, subject.establishedOneShotSamples, subject.establishedSamples]);
      const lengths = lists.map((list) => list.length);
      const { foreignShare } = await gate.measure(() => measureRound(subjects, round, sampling));
      if (foreignShare <= gate.maxForeignShare) break;
      if (attempt === sampling.attempts) {
        disturbedKept++;
        break;
      }
      lists.forEach((list, i) => (list.length = lengths[i]!));
      repeated++;
      await gate.waitForQuiet();
    }
  }
  return { repeated, disturbedKept };
}

/** One datapath to load: N rules over K identities, the probe entry flagged as `kind`. */
interface SubjectPlan {
  identities: number;
  rules: number;
  kind: ProbeEntryKind;
}

/**
 * Loads one datapath per plan (each with its own maps, all sharing K),
 * measures them and the floor in interleaved rounds, checks each one's
 * paths, and returns their costs in plan order.
 */
async function measurePlans(
  cleanup: CleanupStack,
  ifindex: number,
  floor: Subject,
  plans: readonly SubjectPlan[],
  sampling: VerdictSampling,
  gate: QuietGate,
  log: (line: string) => void,
): Promise<{ costs: VerdictCost[]; repeated: number; disturbedKept: number }> {
  const removals: (() => void)[] = [];
  try {
    const subjects: DatapathSubject[] = [];
    for (const { identities, rules, kind } of plans) {
      const started = performance.now();
      const layout: SyntheticPolicyLayout = { baseSlot: ENDPOINT_SLOT, peers: identities, peerOffset: identities >> 1 };
      const pinRoot = uniquePinRoot("bench");
      const datapath = Datapath.open({ pinRoot, mapSizes: { policy: rules + 1024, ipcache: identities + 1024 } });
      removals.push(cleanup.add(`datapath pinned at ${pinRoot}`, () => datapath.destroy()));
      writePeerIpcache(datapath, identities);
      writeSyntheticPolicy(datapath, layout, 0, rules);
      // As the compiler flags a slot without any-peer entries: that lookup is skipped.
      datapath.setEndpoint(ifindex, { endpointId: 1, identity: peerIdentity(identities), slot: ENDPOINT_SLOT, flags: EP_ISOLATED_INGRESS | EP_NO_ANY_PEER_INGRESS });
      const label = `N=${rules} K=${identities}${kind === "plain" ? "" : ` ${kind}`}`;
      subjects.push(new DatapathSubject(datapath, ifindex, layout, label, kind));
      log(`verdict cost: ${label} loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      await yieldToEventLoop();
    }
    log(`verdict cost: ${sampling.rounds} interleaved rounds over ${subjects.map((subject) => subject.label).join(", ")} and the empty program`);
    const disturbance = await measureInRounds([floor, ...subjects], sampling, gate);
    for (const subject of subjects) subject.verifyPaths();
    return { costs: subjects.map(summarize), ...disturbance };
  } finally {
    for (const remove of removals.reverse()) remove();
  }
}

/** Runs `measure` with a test interface and the empty program as the floor, removing both after. */
async function withFloor<T>(cleanup: CleanupStack, measure: (ifindex: number, floor: Subject) => Promise<T>): Promise<T> {
  const { ifindex, remove: removeInterface } = createTestInterface(cleanup);
  const empty = openObject(EMPTY_OBJECT);
  const closeEmpty = cleanup.add("the empty program", () => empty.close());
  try {
    return await measure(ifindex, emptySubject(empty, ifindex));
  } finally {
    closeEmpty();
    removeInterface();
  }
}

/**
 * Measures the floor and every cell of `grid`, one K at a time: a datapath
 * per N (each with its own maps), then interleaved rounds over them and the
 * empty program.
 *
 * @example
 * ```ts
 * const result = await measureVerdictCost(cleanup, [{ identities: 1000, ruleCounts: [1, 1000, 1_000_000] }],
 *   { rounds: 20, newFlowPerRound: 150, establishedRepeat: 100_000, attempts: 3 }, new QuietGate(0.1, 60_000), console.error);
 * ```
 */
export async function measureVerdictCost(
  cleanup: CleanupStack,
  grid: readonly VerdictGridRow[],
  sampling: VerdictSampling,
  gate: QuietGate,
  log: (line: string) => void,
): Promise<VerdictResult> {
  return withFloor(cleanup, async (ifindex, floor) => {
    const cells: VerdictCell[] = [];
    let repeatedRounds = 0;
    let disturbedRoundsKept = 0;
    for (const { identities, ruleCounts } of grid) {
      const plans = ruleCounts.map((rules) => ({ identities, rules, kind: "plain" as const }));
      const measured = await measurePlans(cleanup, ifindex, floor, plans, sampling, gate, log);
      repeatedRounds += measured.repeated;
      disturbedRoundsKept += measured.disturbedKept;
      measured.costs.forEach((cost, i) => cells.push({ identities, rules: ruleCounts[i]!, ...cost }));
    }
    return { floor: summarize(floor), cells, repeatedRounds, disturbedRoundsKept };
  });
}

/**
 * Measures the probe entry plain, strict and limited (one datapath each,
 * `rules` entries over `identities` identities) against each other and
 * the floor, in the same interleaved rounds.
 *
 * @example
 * ```ts
 * const result = await measureEntryFlagCost(cleanup, { identities: 1000, rules: 1000 },
 *   { rounds: 20, newFlowPerRound: 150, establishedRepeat: 100_000, attempts: 3 }, new QuietGate(0.1, 60_000), console.error);
 * result.rows.find((row) => row.kind === "strict")?.newFlowNs;
 * ```
 */
export async function measureEntryFlagCost(
  cleanup: CleanupStack,
  size: { identities: number; rules: number },
  sampling: VerdictSampling,
  gate: QuietGate,
  log: (line: string) => void,
): Promise<EntryFlagResult> {
  const kinds: ProbeEntryKind[] = ["plain", "strict", "limited"];
  return withFloor(cleanup, async (ifindex, floor) => {
    const measured = await measurePlans(cleanup, ifindex, floor, kinds.map((kind) => ({ ...size, kind })), sampling, gate, log);
    return {
      ...size,
      floor: summarize(floor),
      rows: measured.costs.map((cost, i) => ({ kind: kinds[i]!, ...cost })),
      repeatedRounds: measured.repeated,
      disturbedRoundsKept: measured.disturbedKept,
    };
  });
}
