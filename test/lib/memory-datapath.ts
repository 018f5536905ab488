/**
 * An in-memory {@linkcode AgentDatapath} for the agent's unit tests: it keeps
 * the contents of the endpoint, ipcache and policy maps as the kernel
 * datapath would after the same calls (a pod's endpoint entry follows its
 * interface, entries of pods without a known interface are skipped), keeps
 * the set of attached interfaces, and records every call in order, so a test
 * can check what the maps hold, answer verdicts from them with the lookup
 * emulation, and check the order of writes, attaches and detaches. It needs
 * no root and no kernel; the kernel path is covered by the cluster suites.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import type { AgentDatapath, AttachedMode } from "../../src/agent/agent-datapath.ts";
import { failClosed, recountTcpSources, tcpSourceKeyString } from "../../src/datapath/index.ts";
import type {
  ApplyResult,
  ConntrackEntry,
  Counter,
  EventSubscription,
  FlowEvent,
  MapIpcacheEntry,
  ReasonName,
  TcpSourceKey,
  TcpSourceRecount,
  TcpSourceValue,
} from "../../src/datapath/index.ts";
import { ipcacheKeyString, policyKeyString } from "../../src/policy/desired-state.ts";
import type { DesiredMaps, DesiredState, EndpointState, IpcacheEntry, PolicyEntry, StateDiff, TcpLimits } from "../../src/policy/desired-state.ts";

/** A map write of one call: its map, the key as text, and whether it upserted or removed. */
type Write = `${"+" | "-"}${"policy" | "endpoint" | "ipcache" | "tcplimit"} ${string}`;

/**
 * The datapath as maps in memory.
 *
 * @example
 * ```ts
 * const datapath = new MemoryDatapath();
 * datapath.apply(compiler.commit(), (pod) => (pod === "x/a" ? 7 : undefined));
 * datapath.endpoints.get(7); // { endpointId: 1, identity: 256, slot: 1, flags: 1 }
 * datapath.calls;            // ["apply +7"]
 * ```
 */
export class MemoryDatapath implements AgentDatapath {
  readonly endpoints = new Map<number, EndpointState>();
  /** By {@linkcode ipcacheKeyString}. */
  readonly ipcache = new Map<string, IpcacheEntry>();
  /** By {@linkcode policyKeyString}. */
  readonly policy = new Map<string, PolicyEntry>();
  /** `pal_tcp_limits`: rule id -> limits. */
  readonly tcpLimits = new Map<number, TcpLimits>();
  /** `pal_tcp_sources`, by {@linkcode tcpSourceKeyString}: what the kernel counts per source, for the recount to correct. */
  readonly tcpSources = new Map<string, [TcpSourceKey, TcpSourceValue]>();
  /** `pal_ct`, as the kernel would hold it: what {@linkcode recountTcpSources} counts. */
  conntrack: ConntrackEntry[] = [];
  /** The clock {@linkcode recountTcpSources} reads, bpf_ktime_get_ns()'s in the kernel. */
  nowNs = 0n;
  readonly attached = new Set<number>();
  /**
   * Every call that changes something, in order: `apply` and `replaceAll`
   * with the endpoint entries they wrote (`+7`) and removed (`-7`) by
   * interface, the others with their interface (`attach 7`).
   */
  readonly calls: string[] = [];
  /** Every map write of `apply` and `replaceAll`, in order: `+policy <key>`, `-ipcache <prefix>`, `+endpoint <ifindex>`. */
  readonly writes: string[] = [];
  /** What {@linkcode ruleStats} answers. */
  readonly rules = new Map<number, Counter>();
  /** What {@linkcode reasonStats} answers (reasons not listed count 0). */
  readonly reasons: Partial<Record<ReasonName, Counter>> = {};
  /** When set, the next `apply` or `replaceAll` writes the policy upserts it has, then throws this (a map that filled up). */
  failNextWrite: Error | undefined;
  /** `pal_policy`'s max_entries: writing a new key into a full map throws ENOSPC, as the kernel does. */
  capacity = 1_048_576;
  /** The most policy entries the map held at once. */
  peakPolicyEntries = 0;
  /** What the next {@linkcode gcConntrack} does: return a count, or throw. */
  conntrackGc: () => number = () => 0;
  closed = false;
  /** The interface each pod's endpoint entry was last written for, as the kernel datapath tracks it. */
  readonly #endpointIfindex = new Map<string, number>();
  readonly #listeners = new Set<(event: FlowEvent) => void>();
  #revision = 0;

  apply(diff: StateDiff, ifindexOf: (podKey: string) => number | undefined): ApplyResult {
    const writes: Write[] = [];
    const skippedEndpoints: string[] = [];
    for (const [ruleId, limits] of diff.tcpLimitUpserts) writes.push(this.#upsertTcpLimit(ruleId, limits));
    for (const entry of diff.policyUpserts) writes.push(this.#upsertPolicy(entry));
    this.#failIfAsked();
    for (const [podKey, state] of diff.endpointUpserts) {
      const ifindex = ifindexOf(podKey);
      if (ifindex === undefined) {
        skippedEndpoints.push(podKey);
        continue;
      }
      const previous = this.#endpointIfindex.get(podKey);
      if (previous !== undefined && previous !== ifindex && this.endpoints.delete(previous)) writes.push(`-endpoint ${previous}`);
      this.#endpointIfindex.set(podKey, ifindex);
      this.endpoints.set(ifindex, state);
      writes.push(`+endpoint ${ifindex}`);
    }
    for (const entry of diff.ipcacheUpserts) writes.push(this.#upsertIpcache(entry));
    for (const key of diff.ipcacheRemovals) {
      const text = ipcacheKeyString(key);
      if (this.ipcache.delete(text)) writes.push(`-ipcache ${text}`);
    }
    for (const podKey of diff.endpointRemovals) {
      const ifindex = ifindexOf(podKey) ?? this.#endpointIfindex.get(podKey);
      this.#endpointIfindex.delete(podKey);
      if (ifindex !== undefined && this.endpoints.delete(ifindex)) writes.push(`-endpoint ${ifindex}`);
    }
    for (const key of diff.policyRemovals) {
      const text = policyKeyString(key);
      if (this.policy.delete(text)) writes.push(`-policy ${text}`);
    }
    for (const ruleId of diff.tcpLimitRemovals) if (this.tcpLimits.delete(ruleId)) writes.push(`-tcplimit ${ruleId}`);
    return this.#result("apply", writes, skippedEndpoints);
  }

  policyCapacity(): number {
    return this.capacity;
  }

  readIpcache(): MapIpcacheEntry[] {
    return [...this.ipcache].map(([cidr, entry]) => ({ cidr, ...entry.value }));
  }

  replaceAll(state: DesiredMaps, ifindexOf: (podKey: string) => number | undefined): ApplyResult {
    const writes: Write[] = [];
    const skippedEndpoints: string[] = [];
    this.#endpointIfindex.clear();
    const endpoints = new Map<number, EndpointState>();
    for (const [podKey, endpoint] of state.endpoints) {
      const ifindex = ifindexOf(podKey);
      if (ifindex === undefined) {
        skippedEndpoints.push(podKey);
        continue;
      }
      this.#endpointIfindex.set(podKey, ifindex);
      endpoints.set(ifindex, endpoint);
    }
    const upserts = [...state.policy.values()].filter((entry) => !isDeepStrictEqual(this.policy.get(policyKeyString(entry.key)), entry));
    const removals = [...this.policy.keys()].filter((text) => !state.policy.has(text));
    if (this.policy.size + upserts.filter((entry) => !this.policy.has(policyKeyString(entry.key))).length > this.capacity) {
      // As the kernel datapath does: endpoints on changing slots fail closed, old entries go, then the new ones come.
      const changed = new Set([...upserts.map((entry) => entry.key.slot), ...removals.map((text) => this.policy.get(text)?.key.slot)]);
      for (const [ifindex, endpoint] of this.endpoints) {
        if (!changed.has(endpoint.slot)) continue;
        this.endpoints.set(ifindex, failClosed(endpoint));
        writes.push(`+endpoint ${ifindex}`);
      }
      for (const text of removals) {
        this.policy.delete(text);
        writes.push(`-policy ${text}`);
      }
    }
    for (const [ruleId, limits] of state.tcpLimits) if (!isDeepStrictEqual(this.tcpLimits.get(ruleId), limits)) writes.push(this.#upsertTcpLimit(ruleId, limits));
    for (const entry of upserts) writes.push(this.#upsertPolicy(entry));
    this.#failIfAsked();
    for (const [ifindex, endpoint] of endpoints) {
      if (isDeepStrictEqual(this.endpoints.get(ifindex), endpoint)) continue;
      this.endpoints.set(ifindex, endpoint);
      writes.push(`+endpoint ${ifindex}`);
    }
    for (const [text, entry] of state.ipcache) if (!isDeepStrictEqual(this.ipcache.get(text), entry)) writes.push(this.#upsertIpcache(entry));
    for (const text of [...this.ipcache.keys()]) {
      if (state.ipcache.has(text)) continue;
      this.ipcache.delete(text);
      writes.push(`-ipcache ${text}`);
    }
    for (const ifindex of [...this.endpoints.keys()]) {
      if (endpoints.has(ifindex)) continue;
      this.endpoints.delete(ifindex);
      writes.push(`-endpoint ${ifindex}`);
    }
    for (const text of [...this.policy.keys()]) {
      if (state.policy.has(text)) continue;
      this.policy.delete(text);
      writes.push(`-policy ${text}`);
    }
    for (const ruleId of [...this.tcpLimits.keys()]) {
      if (state.tcpLimits.has(ruleId)) continue;
      this.tcpLimits.delete(ruleId);
      writes.push(`-tcplimit ${ruleId}`);
    }
    return this.#result("replaceAll", writes, skippedEndpoints);
  }

  #failIfAsked(): void {
    const error = this.failNextWrite;
    this.failNextWrite = undefined;
    if (error !== undefined) throw error;
  }

  setEndpoint(ifindex: number, state: EndpointState): void {
    this.endpoints.set(ifindex, state);
    this.calls.push(`setEndpoint ${ifindex}`);
  }

  removeEndpoint(ifindex: number): boolean {
    for (const [podKey, known] of this.#endpointIfindex) if (known === ifindex) this.#endpointIfindex.delete(podKey);
    this.calls.push(`removeEndpoint ${ifindex}`);
    return this.endpoints.delete(ifindex);
  }

  attach(ifindex: number): AttachedMode {
    this.attached.add(ifindex);
    this.calls.push(`attach ${ifindex}`);
    return "tcx";
  }

  detach(ifindex: number): boolean {
    this.calls.push(`detach ${ifindex}`);
    return this.attached.delete(ifindex);
  }

  attachedInterfaces(): number[] {
    return [...this.attached].sort((a, b) => a - b);
  }

  events(onEvent: (event: FlowEvent) => void): EventSubscription {
    this.#listeners.add(onEvent);
    return { close: () => this.#listeners.delete(onEvent), unref: () => {} };
  }

  /** Delivers `event` to every open subscription, as the ring buffer would. */
  emit(event: FlowEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  ruleStats(): Map<number, Counter> {
    return new Map(this.rules);
  }

  reasonStats(): Record<ReasonName, Counter> {
    return this.reasons as Record<ReasonName, Counter>;
  }

  gcConntrack(): number {
    return this.conntrackGc();
  }

  /** The kernel datapath's recount, on {@linkcode conntrack}, {@linkcode tcpSources} and {@linkcode tcpLimits} at {@linkcode nowNs}. */
  recountTcpSources(): TcpSourceRecount {
    const { upserts, removals } = recountTcpSources(this.conntrack, [...this.tcpSources.values()], new Set(this.tcpLimits.keys()), this.nowNs);
    for (const [key, value] of upserts) this.tcpSources.set(tcpSourceKeyString(key), [key, value]);
    let removed = 0;
    for (const key of removals) if (this.tcpSources.delete(tcpSourceKeyString(key))) removed++;
    return { corrected: upserts.length, removed };
  }

  close(): void {
    this.closed = true;
  }

  /**
   * The maps as desired state, endpoints keyed by the pod key `podOf` gives
   * their interface (entries of interfaces it does not know are left out):
   * what `lookupVerdict` answers a packet's verdict from, as the kernel does.
   */
  state(podOf: (ifindex: number) => string | undefined): DesiredState {
    const endpoints = new Map<string, EndpointState>();
    for (const [ifindex, endpoint] of this.endpoints) {
      const pod = podOf(ifindex);
      if (pod !== undefined) endpoints.set(pod, endpoint);
    }
    return { ipcache: new Map(this.ipcache), endpoints, policy: new Map(this.policy), rules: new Map(), identities: new Map(), tcpLimits: new Map(this.tcpLimits) };
  }

  #upsertPolicy(entry: PolicyEntry): Write {
    const text = policyKeyString(entry.key);
    if (!this.policy.has(text) && this.policy.size >= this.capacity) throw new Error(`bpf_map_update_batch failed: ENOSPC (pal_policy holds ${this.capacity} entries)`);
    this.policy.set(text, entry);
    this.peakPolicyEntries = Math.max(this.peakPolicyEntries, this.policy.size);
    return `+policy ${text}`;
  }

  #upsertTcpLimit(ruleId: number, limits: TcpLimits): Write {
    this.tcpLimits.set(ruleId, limits);
    return `+tcplimit ${ruleId}`;
  }

  #upsertIpcache(entry: IpcacheEntry): Write {
    const text = ipcacheKeyString(entry.key);
    this.ipcache.set(text, entry);
    return `+ipcache ${text}`;
  }

  #result(call: "apply" | "replaceAll", writes: Write[], skippedEndpoints: string[]): ApplyResult {
    const endpointWrites = writes.filter((w) => w.slice(1).startsWith("endpoint ")).map((w) => `${w[0]}${w.slice("+endpoint ".length)}`);
    this.calls.push([call, ...endpointWrites].join(" "));
    this.writes.push(...writes);
    if (writes.length > 0) this.#revision++;
    const count = (prefix: string): number => writes.filter((w) => w.startsWith(prefix)).length;
    return {
      policyUpserts: count("+policy"),
      endpointUpserts: count("+endpoint"),
      ipcacheUpserts: count("+ipcache"),
      ipcacheRemovals: count("-ipcache"),
      endpointRemovals: count("-endpoint"),
      policyRemovals: count("-policy"),
      tcpLimitUpserts: count("+tcplimit"),
      tcpLimitRemovals: count("-tcplimit"),
      skippedEndpoints,
      revision: this.#revision,
    };
  }
}

