/**
 * What the agent needs of a node's datapath, and no more: writing the
 * desired state (a full sync, then diffs), endpoint entries of single
 * interfaces, attaching to and detaching from pod interfaces, the flow event
 * stream, the verdict counters, conntrack collection and the recount of
 * connection limits' per-source counts. The agent layer owns
 * this contract; src/datapath's `Datapath` façade is the implementation
 * that touches the kernel, and the agent's unit tests use an in-memory one
 * that keeps map contents, so the reconcile loop runs without root.
 *
 * @module
 */
import type { ApplyResult, Counter, EventSubscription, FlowEvent, MapIpcacheEntry, ReasonName, TcpSourceRecount } from "../datapath/index.ts";
import type { DesiredMaps, EndpointState, StateDiff } from "../policy/desired-state.ts";

/** How an interface is attached: a tcx link, or a tc clsact filter on older kernels. */
export type AttachedMode = "tcx" | "tc";

/**
 * A node's datapath as the agent uses it. Writes keep the order packets rely
 * on (see {@linkcode StateDiff}); `ifindexOf` maps a pod key to its host-side
 * interface, and endpoints of pods it does not know are skipped and listed in
 * the result.
 *
 * @example
 * ```ts
 * const datapath: AgentDatapath = Datapath.open({ pinRoot: "/sys/fs/bpf/palisade" });
 * datapath.replaceAll(compiler.mapsState(), (pod) => interfaces.get(pod)); // once, at start
 * datapath.apply(compiler.commit(), (pod) => interfaces.get(pod));    // every later commit
 * ```
 */
export interface AgentDatapath {
  /** Writes one commit's diff. */
  apply(diff: StateDiff, ifindexOf: (podKey: string) => number | undefined): ApplyResult;
  /** How many policy entries `pal_policy` holds at most (its `max_entries`). */
  policyCapacity(): number;
  /**
   * Makes the maps hold exactly `state`, writing only what differs from what they hold (a restarted agent's re-adoption);
   * when old and new policy entries together would not fit, endpoints whose slot changes are failed closed while it switches.
   */
  replaceAll(state: DesiredMaps, ifindexOf: (podKey: string) => number | undefined): ApplyResult;
  /** What the ipcache holds now (what an earlier agent left pinned, before the first write). */
  readIpcache(): MapIpcacheEntry[];
  /** Writes the endpoint entry of one interface (its pod's interface appeared after the entry was computed). */
  setEndpoint(ifindex: number, state: EndpointState): void;
  /** Removes the endpoint entry of one interface; false if there was none. */
  removeEndpoint(ifindex: number): boolean;
  /** Attaches the programs to an interface; idempotent. */
  attach(ifindex: number): AttachedMode;
  /** Detaches the programs from an interface; false if nothing was attached. */
  detach(ifindex: number): boolean;
  /** The interfaces the programs are attached to, this run's and earlier runs' alike, sorted. */
  attachedInterfaces(): number[];
  /** Delivers flow events; a record that cannot be decoded goes to `onError`. */
  events(onEvent: (event: FlowEvent) => void, options: { onError?: (error: Error) => void }): EventSubscription;
  /** New-flow verdicts per rule id. */
  ruleStats(): Map<number, Counter>;
  /** Packets and bytes per verdict reason. */
  reasonStats(): Record<ReasonName, Counter>;
  /** Deletes expired conntrack entries; returns how many. */
  gcConntrack(): number;
  /** Recounts the connections of every source of a limited rule from the counted conntrack entries alive, and corrects what differs. */
  recountTcpSources(): TcpSourceRecount;
  /** Releases what this process holds; the kernel state stays pinned. */
  close(): void;
}

