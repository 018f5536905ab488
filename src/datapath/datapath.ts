/**
 * The datapath façade: loads the endpoint program with its maps pinned (and
 * re-adopted when already pinned), writes desired state as ordered, batched
 * map changes, attaches to interfaces through pinned tcx links (tc clsact as
 * the fallback), and reads back verdict statistics, conntrack and flow
 * events. The only code above `native.ts` that touches the kernel. Other
 * processes (the CNI plugin) attach the programs an agent pinned with
 * {@linkcode attachPinnedPrograms}.
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { repositoryRoot } from "../repository-root.ts";
import {
  AbiMismatchError,
  CFG_CT_LEGACY_KEYS,
  checkLayout,
  configCodec,
  ctFlow,
  ctKeyCodec,
  ctValueCodec,
  decodeFlowEvent,
  DEFAULT_CONFIG,
  endpointKeyCodec,
  endpointValueCodec,
  fragKeyCodec,
  fragValueCodec,
  ipcacheKeyCodec,
  ipcacheValueCodec,
  isCanonicalCtKey,
  isExactPolicyKey,
  isHostIpcacheKey,
  MAP_NAMES,
  policyKeyCodec,
  policyValueCodec,
  perCpuCodec,
  proxyConfigCodec,
  tcpLimitCodec,
  tcpSourceKeyCodec,
  tcpSourceValueCodec,
  u32Codec,
  counterCodec,
  type Codec,
  type Counter,
  type CtKey,
  type CtValue,
  type DatapathConfig,
  type EndpointKey,
  type FlowEvent,
  type FragKey,
  type FragValue,
  type MapName,
  type ProxyConfig,
  type TcpSourceKey,
  type TcpSourceValue,
} from "./abi.ts";
import { recountTcpSources } from "./tcp-sources.ts";
import { failClosed } from "./policy-capacity.ts";
import { AbiEnumMismatchError, checkReasons, REASONS, type ReasonName } from "./reasons.ts";
import { BpfMap, type EncodedEntry, type MapContents } from "./bpf-map.ts";
import { MirroredMap, type MirrorOptions } from "./mirrored-map.ts";
import { DatapathError } from "./datapath-error.ts";
import {
  attachSkLookup,
  attachTc,
  attachTcx,
  BpfError,
  closeFd,
  detachTc,
  linkDetach,
  linkUpdate,
  mapInfo,
  numPossibleCpus,
  objGet,
  objPin,
  openObject,
  RingBufferReader,
  testRun,
  type BpfObject,
  type TcDirection,
} from "./native.ts";
import { ipcacheKeyString, sameEndpointState } from "../policy/desired-state.ts";
import type { DesiredMaps, EndpointState, IpcacheKey, IpcacheValue, PolicyEntry, PolicyKey, PolicyValue, StateDiff, TcpLimits } from "../policy/desired-state.ts";

/** The `max_entries` of the map pinned at `path`; undefined when nothing is pinned there. */
function pinnedMaxEntries(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const fd = objGet(path);
  try {
    return mapInfo(fd).maxEntries;
  } finally {
    closeFd(fd);
  }
}

/** `max_entries` overrides, applied when the maps are created (pinned maps keep theirs). */
export interface MapSizes {
  /** `pal_policy`, and `pal_policy_exact` with it. */
  policy?: number;
  /** `pal_ipcache`, and `pal_ipcache_hosts` with it. */
  ipcache?: number;
  endpoints?: number;
  conntrack?: number;
  fragments?: number;
  /** Rules with TCP connection limits (`pal_tcp_limits`). */
  tcpLimits?: number;
  /** (rule, source address) pairs of limited rules tracked at once (`pal_tcp_sources`, LRU). */
  tcpSources?: number;
}

/** Options of {@link Datapath.open}. */
export interface DatapathOptions {
  /** The BPF object; default `<repo>/bpf/out/endpoint.bpf.o`. */
  objectPath?: string;
  /** bpffs directory the maps are pinned in by name (and links under `links/`); created if absent. */
  pinRoot: string;
  mapSizes?: MapSizes;
}

/** How {@link Datapath.attach} hooks a program to an interface. `auto` = tcx, else tc clsact. */
export type AttachMode = "auto" | "tcx" | "tc";

/** A program of the endpoint object, by the direction of the pod's traffic it sees. */
export type ProgramName = "from-pod" | "to-pod";

/** Map writes made by {@link Datapath.apply} or {@link Datapath.replaceAll}. */
export interface ApplyResult {
  policyUpserts: number;
  endpointUpserts: number;
  ipcacheUpserts: number;
  ipcacheRemovals: number;
  endpointRemovals: number;
  policyRemovals: number;
  /** Rules whose TCP limits were written or removed (`pal_tcp_limits`; no revision bump of their own: the kernel reads them per new flow). */
  tcpLimitUpserts: number;
  tcpLimitRemovals: number;
  /** Pod keys whose interface is not known yet: their endpoint entries were not written. */
  skippedEndpoints: string[];
  /** pal_config.revision after the change (bumped only when something was written). */
  revision: number;
}

/** Outcome of {@link Datapath.testRun}. */
export interface DatapathTestRun {
  /** TC_ACT_OK (0) = pass, TC_ACT_SHOT (2) = drop. */
  retval: number;
  /** Kernel-measured average per run. */
  durationNs: number;
}

/** A conntrack entry, decoded. */
export interface ConntrackEntry {
  /** The key as the map holds it (canonical order: see `isCanonicalCtKey`). */
  key: CtKey;
  value: CtValue;
  /** The flow's first packet's tuple and hook direction (`ctFlow`). */
  flow: CtKey;
}

/** An open flow event stream. */
export interface EventSubscription {
  /** Stops delivering events. Idempotent. */
  close(): void;
  /** Lets the process exit while the subscription is open. */
  unref(): void;
}

/** An ipcache entry as read back from the map, its prefix as canonical text (`10.0.0.0/8`) for people and tests. */
export interface MapIpcacheEntry {
  cidr: string;
  identity: number;
  flags: number;
}

/** The decoded contents of the state maps, as {@link Datapath.readState} returns them. */
export interface MapState {
  endpoints: Map<number, EndpointState>;
  ipcache: MapIpcacheEntry[];
  policy: PolicyEntry[];
}

/** The typed maps of a datapath; see {@link Datapath.maps}. */
export interface DatapathMaps {
  /** The trie; its host entries are written to `pal_ipcache_hosts` too (`ipcache.mirror`). */
  ipcache: MirroredMap<IpcacheKey, IpcacheValue>;
  /** The hash; entries of interface indexes below its size are written to `pal_endpoints_by_ifindex` too (`endpoints.mirror`). */
  endpoints: MirroredMap<EndpointKey, EndpointState>;
  /** The trie; its exact-port entries are written to `pal_policy_exact` too (`policy.mirror`). */
  policy: MirroredMap<PolicyKey, PolicyValue>;
  conntrack: BpfMap<CtKey, CtValue>;
  fragments: BpfMap<FragKey, FragValue>;
  config: BpfMap<number, DatapathConfig>;
  /** Per CPU: one counter per possible CPU. */
  ruleStats: BpfMap<number, Counter[]>;
  /** Per CPU: one counter per possible CPU. */
  reasonStats: BpfMap<number, Counter[]>;
  /** Rule id -> TCP connection limits. */
  tcpLimits: BpfMap<number, TcpLimits>;
  /** Per source address of a limited rule: its connection count and token bucket. */
  tcpSources: BpfMap<TcpSourceKey, TcpSourceValue>;
  /** Entry 0: where flows with HTTP rules are steered; see {@link Datapath.setProxy}. */
  proxyConfig: BpfMap<number, ProxyConfig>;
}

/** What {@link Datapath.recountTcpSources} changed in `pal_tcp_sources`. */
export interface TcpSourceRecount {
  /** Sources whose count was corrected (or made again, for an evicted one holding connections). */
  corrected: number;
  /** Idle sources, and sources of rules without limits any more, removed. */
  removed: number;
}

const PROGRAMS: Record<ProgramName, string> = { "from-pod": "pal_from_pod", "to-pod": "pal_to_pod" };
/** Host-side ingress sees what the pod sends; host-side egress what it receives. */
const HOOKS: readonly { direction: TcDirection; program: ProgramName }[] = [
  { direction: "ingress", program: "from-pod" },
  { direction: "egress", program: "to-pod" },
];
/** The program on the ingress of the proxy device's receiving end (see proxy-routing.ts). */
const PROXY_PROGRAM = "pal_to_proxy";
/** The sk_lookup program of the node's namespace that gives the proxy's listener the SYNs tc leaves to the kernel (proxy.h). */
const PROXY_LOOKUP_PROGRAM = "pal_proxy_lookup";
/** Its netns link's pin under `<pinRoot>/links/`. */
const PROXY_LOOKUP_LINK = "proxy-sk-lookup";
const TC_FILTER = { handle: 0x70616c, priority: 0x7061 } as const;
const LINK_PIN = /^(\d+)-(ingress|egress)$/;
const PROXY_LINK_PIN = /^proxy-(\d+)-ingress$/;
/** Errors of bpf_link_create meaning "this kernel has no tcx". */
const NO_TCX = new Set(["EINVAL", "EOPNOTSUPP", "ENOTSUPP", "ENOTSUP"]);

/** The default BPF object: `<repo>/bpf/out/endpoint.bpf.o`. */
export function defaultObjectPath(): string {
  return join(repositoryRoot(), "bpf", "out", "endpoint.bpf.o");
}

/** The kernel's CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns() and conntrack deadlines. */
function monotonicNowNs(): bigint {
  return process.hrtime.bigint();
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What one map gets from an apply or a full sync: encoded upserts and removed keys. */
interface MapChange {
  upserts: EncodedEntry[];
  removals: Buffer[];
}

/** Every map change of one apply or full sync; {@link Datapath.apply} says in which order they are written. */
interface EncodedChange {
  policy: MapChange;
  endpoints: MapChange;
  ipcache: MapChange;
  tcpLimits: MapChange;
  skippedEndpoints: string[];
  /** Full sync only: entries the mirrored maps hold already and their mirrors lack, written after the maps' writes. */
  mirrorFill?: { policy: EncodedEntry[]; ipcache: EncodedEntry[]; endpoints: EncodedEntry[] };
  /**
   * Set when old and new policy entries together would overflow `pal_policy`: these endpoints
   * (failed-closed forms of the current entries of those whose slot changes) are written first,
   * then the policy removals, and only then the upserts, so the map never holds both.
   */
  removalsFirst?: EncodedEntry[];
}

function emptyChange(): EncodedChange {
  return {
    policy: { upserts: [], removals: [] },
    endpoints: { upserts: [], removals: [] },
    ipcache: { upserts: [], removals: [] },
    tcpLimits: { upserts: [], removals: [] },
    skippedEndpoints: [],
  };
}

function sumCounters(counters: readonly Counter[]): Counter {
  return counters.reduce((sum, counter) => ({ packets: sum.packets + counter.packets, bytes: sum.bytes + counter.bytes }), { packets: 0n, bytes: 0n });
}

/**
 * The kernel datapath of one node: the loaded endpoint program and its
 * pinned maps.
 *
 * @example
 * ```ts
 * const datapath = Datapath.open({ pinRoot: "/sys/fs/bpf/palisade" });
 * datapath.replaceAll(compiler.mapsState(), (pod) => interfaces.get(pod));
 * datapath.attach(ifindex);
 * const events = datapath.events((event) => log.info(event));
 * // ... later, on shutdown: kernel state stays pinned for the next agent
 * events.close();
 * datapath.close();
 * ```
 */
export class Datapath {
  /** The bpffs directory holding the pinned maps and `links/`. */
  readonly pinRoot: string;
  /** The BPF object the programs were loaded from. */
  readonly objectPath: string;
  /**
   * The maps, typed by their codecs. The agent writes through {@link Datapath.apply}
   * and {@link Datapath.replaceAll}, which keep the update order packets rely on;
   * tools that fill maps with synthetic state (the benchmarks) and readers use these.
   */
  readonly maps: DatapathMaps;
  readonly #object: BpfObject;
  readonly #eventsFd: number;
  readonly #programFds: Record<ProgramName, number>;
  readonly #proxyProgramFd: number;
  readonly #proxyLookupFd: number;
  /** Interfaces this instance wrote endpoint entries for, by pod key: removals by pod key need them. */
  readonly #endpointIfindex = new Map<string, number>();
  readonly #subscriptions = new Set<EventSubscription>();
  #closed = false;
  /**
   * Whether the mirrors are known to hold only what their maps hold: not before this instance's
   * first full sync (an earlier process may have died between two writes), nor after a write failed.
   */
  #mirrorsChecked = false;
  /** The ipcache as {@link readIpcache} last read it, until the next {@link replaceAll} takes it. */
  #ipcacheRead: MapContents<IpcacheKey, IpcacheValue> | undefined;

  private constructor(pinRoot: string, objectPath: string, object: BpfObject) {
    this.pinRoot = pinRoot;
    this.objectPath = objectPath;
    this.#object = object;
    const cpus = numPossibleCpus();
    const where = `pin root "${pinRoot}"`;
    const map = <K, V>(name: MapName, key: Codec<K>, value: Codec<V>): BpfMap<K, V> => new BpfMap(object.map(name), key, value, where, () => this.#checkOpen(name));
    const mirrored = <K, V>(name: MapName, key: Codec<K>, value: Codec<V>, mirror: MirrorOptions<K, V>): MirroredMap<K, V> =>
      new MirroredMap(object.map(name), key, value, where, () => this.#checkOpen(name), mirror);
    const byIfindex = map(MAP_NAMES.endpointsByIfindex, endpointKeyCodec, endpointValueCodec);
    this.maps = {
      ipcache: mirrored(MAP_NAMES.ipcache, ipcacheKeyCodec, ipcacheValueCodec, { map: map(MAP_NAMES.ipcacheHosts, ipcacheKeyCodec, ipcacheValueCodec), covers: isHostIpcacheKey }),
      endpoints: mirrored(MAP_NAMES.endpoints, endpointKeyCodec, endpointValueCodec, {
        map: byIfindex,
        covers: (key) => endpointKeyCodec.decode(key).ifindex < byIfindex.maxEntries,
        absent: Buffer.alloc(endpointValueCodec.layout.size), // endpoint_id 0
      }),
      policy: mirrored(MAP_NAMES.policy, policyKeyCodec, policyValueCodec, { map: map(MAP_NAMES.policyExact, policyKeyCodec, policyValueCodec), covers: isExactPolicyKey }),
      conntrack: map(MAP_NAMES.conntrack, ctKeyCodec, ctValueCodec),
      fragments: map(MAP_NAMES.fragments, fragKeyCodec, fragValueCodec),
      config: map(MAP_NAMES.config, u32Codec, configCodec),
      ruleStats: map(MAP_NAMES.ruleStats, u32Codec, perCpuCodec(counterCodec, cpus)),
      reasonStats: map(MAP_NAMES.reasonStats, u32Codec, perCpuCodec(counterCodec, cpus)),
      tcpLimits: map(MAP_NAMES.tcpLimits, u32Codec, tcpLimitCodec),
      tcpSources: map(MAP_NAMES.tcpSources, tcpSourceKeyCodec, tcpSourceValueCodec),
      proxyConfig: map(MAP_NAMES.proxyConfig, u32Codec, proxyConfigCodec),
    };
    this.#eventsFd = object.map(MAP_NAMES.events).fd;
    this.#programFds = { "from-pod": object.program(PROGRAMS["from-pod"]).fd, "to-pod": object.program(PROGRAMS["to-pod"]).fd };
    this.#proxyProgramFd = object.program(PROXY_PROGRAM).fd;
    this.#proxyLookupFd = object.program(PROXY_LOOKUP_PROGRAM).fd;
  }

  /**
   * Loads the endpoint object with its maps pinned by name under `pinRoot`,
   * re-adopting maps already pinned there (an agent restart keeps every
   * entry), checks the map layouts and the verdict reasons against the ABI
   * (the codecs and `REASONS`), writes the default config if none is set,
   * collects expired conntrack entries (and so flags keys an older agent's
   * programs wrote: {@link gcConntrack}), pins the programs (for {@linkcode attachPinnedPrograms}), and removes
   * pinned links of interfaces that no longer exist.
   *
   * @example
   * ```ts
   * const datapath = Datapath.open({ pinRoot: "/sys/fs/bpf/palisade", mapSizes: { policy: 65536 } });
   * ```
   */
  static open(options: DatapathOptions): Datapath {
    const objectPath = options.objectPath ?? defaultObjectPath();
    const { pinRoot } = options;
    const sizes = options.mapSizes ?? {};
    const mapMaxEntries: Record<string, number> = {};
    const sizeOf: [number | undefined, MapName][] = [
      [sizes.policy, MAP_NAMES.policy],
      [sizes.ipcache, MAP_NAMES.ipcache],
      [sizes.endpoints, MAP_NAMES.endpoints],
      [sizes.conntrack, MAP_NAMES.conntrack],
      [sizes.fragments, MAP_NAMES.fragments],
      [sizes.tcpLimits, MAP_NAMES.tcpLimits],
      [sizes.tcpSources, MAP_NAMES.tcpSources],
    ];
    for (const [size, map] of sizeOf) if (size !== undefined) mapMaxEntries[map] = size;
    // A pinned map keeps the size it was created with (libbpf re-adopts only an
    // identical definition): an agent built with other defaults still takes over.
    const pinned = new Set<MapName>();
    for (const map of Object.values(MAP_NAMES)) {
      const size = pinnedMaxEntries(join(pinRoot, map));
      if (size === undefined) continue;
      mapMaxEntries[map] = size;
      pinned.add(map);
    }
    // A hash of a trie's full-length entries holds at most what the trie does: made as large (also
    // when an upgrade creates it beside a trie pinned by an older agent).
    for (const [trie, exact] of [[MAP_NAMES.policy, MAP_NAMES.policyExact], [MAP_NAMES.ipcache, MAP_NAMES.ipcacheHosts]] as const) {
      const size = mapMaxEntries[trie];
      if (!pinned.has(exact) && size !== undefined) mapMaxEntries[exact] = size;
    }

    let object: BpfObject;
    try {
      mkdirSync(join(pinRoot, "links"), { recursive: true });
      object = openObject(objectPath, { pinRoot, mapMaxEntries });
    } catch (error) {
      throw new DatapathError(`Cannot open datapath object "${objectPath}" with pin root "${pinRoot}": ${describe(error)}`, { cause: error });
    }
    try {
      checkLayout(object);
      checkReasons(object);
      const datapath = new Datapath(pinRoot, objectPath, object);
      datapath.#initConfig();
      datapath.gcConntrack();
      datapath.#pinPrograms();
      datapath.#pruneStaleLinks();
      return datapath;
    } catch (error) {
      object.close();
      if (error instanceof AbiMismatchError || error instanceof AbiEnumMismatchError) throw error;
      throw new DatapathError(`Cannot open datapath object "${objectPath}" with pin root "${pinRoot}": ${describe(error)}`, { cause: error });
    }
  }

  /** Closes event subscriptions and the object's fds; pinned maps and links stay in the kernel. Idempotent. */
  close(): void {
    if (this.#closed) return;
    for (const subscription of [...this.#subscriptions]) subscription.close();
    this.#object.close();
    this.#closed = true;
  }

  /** Closes, then removes the pin directory: maps and attachments of this pin root are gone. */
  destroy(): void {
    this.close();
    rmSync(this.pinRoot, { recursive: true, force: true });
  }

  #checkOpen(map: MapName): void {
    if (this.#closed) throw new DatapathError(`Cannot use map "${map}" of pin root "${this.pinRoot}": the datapath is closed`);
  }

  // ---- config ----

  #initConfig(): void {
    if (this.readConfig().revision === 0) this.#writeConfig({ ...DEFAULT_CONFIG });
  }

  #writeConfig(config: DatapathConfig): void {
    this.maps.config.update(0, config);
  }

  /** The current pal_config. */
  readConfig(): DatapathConfig {
    const config = this.maps.config.lookup(0);
    if (config === undefined) throw new DatapathError(`Cannot read map "${MAP_NAMES.config}" of pin root "${this.pinRoot}": entry 0 is missing`);
    return config;
  }

  /**
   * Changes config fields other than the revision (timeouts, flags) and
   * returns the new config.
   *
   * @example
   * ```ts
   * datapath.updateConfig({ flags: CFG_EVENTS_ALLOWED, ctTimeoutUdpS: 30 });
   * ```
   */
  updateConfig(patch: Partial<Omit<DatapathConfig, "revision">>): DatapathConfig {
    const config = { ...this.readConfig(), ...patch };
    this.#writeConfig(config);
    return config;
  }

  /** Bumps pal_config.revision (skipping 0, which means "unset"), so tracked flows are re-checked; returns it. */
  bumpRevision(): number {
    const config = this.readConfig();
    config.revision = config.revision >= 0xffffffff ? 1 : config.revision + 1;
    this.#writeConfig(config);
    return config.revision;
  }

  // ---- desired state ----

  /** `max_entries` of `pal_policy`: how many policy entries fit, old and new slots together while they switch. */
  policyCapacity(): number {
    return this.maps.policy.maxEntries;
  }

  /**
   * Applies a diff in the documented order — TCP limit upserts, policy
   * upserts, endpoint upserts, ipcache upserts, ipcache removals, endpoint
   * removals, policy removals, TCP limit removals — in batches, then bumps
   * the revision so established flows are re-checked against the new policy
   * (a change of TCP limits alone bumps nothing: the kernel reads them per
   * new flow). Endpoints whose interface is unknown
   * (`ifindexOf` answers undefined) are skipped and reported; write them with
   * {@link setEndpoint} when the interface appears.
   *
   * @example
   * ```ts
   * const result = datapath.apply(compiler.commit(), (pod) => interfaces.get(pod));
   * if (result.skippedEndpoints.length > 0) log.info("waiting for interfaces", result.skippedEndpoints);
   * ```
   */
  apply(diff: StateDiff, ifindexOf: (podKey: string) => number | undefined): ApplyResult {
    const { policy, endpoints, ipcache, tcpLimits } = this.maps;
    const change = emptyChange();
    change.tcpLimits.upserts = diff.tcpLimitUpserts.map(([ruleId, limits]) => tcpLimits.encode(ruleId, limits));
    change.tcpLimits.removals = diff.tcpLimitRemovals.map((ruleId) => tcpLimits.encodeKey(ruleId));
    change.policy.upserts = diff.policyUpserts.map((entry) => policy.encode(entry.key, entry.value));
    for (const [podKey, state] of diff.endpointUpserts) {
      const ifindex = ifindexOf(podKey);
      if (ifindex === undefined) {
        change.skippedEndpoints.push(podKey);
        continue;
      }
      const previous = this.#endpointIfindex.get(podKey);
      // The pod's interface changed: its old entry goes with the removals.
      if (previous !== undefined && previous !== ifindex) change.endpoints.removals.push(endpoints.encodeKey({ ifindex: previous }));
      this.#endpointIfindex.set(podKey, ifindex);
      change.endpoints.upserts.push(endpoints.encode({ ifindex }, state));
    }
    change.ipcache.upserts = diff.ipcacheUpserts.map((entry) => ipcache.encode(entry.key, entry.value));
    change.ipcache.removals = diff.ipcacheRemovals.map((key) => ipcache.encodeKey(key));
    for (const podKey of diff.endpointRemovals) {
      const ifindex = ifindexOf(podKey) ?? this.#endpointIfindex.get(podKey);
      this.#endpointIfindex.delete(podKey);
      if (ifindex !== undefined) change.endpoints.removals.push(endpoints.encodeKey({ ifindex }));
    }
    change.policy.removals = diff.policyRemovals.map((key) => policy.encodeKey(key));
    return this.#write(change);
  }

  /**
   * A full sync: reads back what the endpoint, ipcache and policy maps hold,
   * and writes only the difference to `state` (same order as {@link apply}).
   * Entries the state does not have are removed, including endpoints whose
   * interface `ifindexOf` does not know. This is how a restarted agent
   * re-adopts the kernel state without disturbing traffic. When the old and
   * the new policy entries together would not fit `pal_policy` (the new ones
   * alone must: see {@linkcode fitPolicyMap}), the endpoints whose slot changes
   * are failed closed and the old entries removed first, so the map never
   * holds both and no endpoint ever sees a partly written slot.
   *
   * @example
   * ```ts
   * const datapath = Datapath.open({ pinRoot });
   * datapath.replaceAll(compiler.mapsState(), (pod) => interfaces.get(pod)); // usually a handful of writes
   * ```
   */
  replaceAll(state: DesiredMaps, ifindexOf: (podKey: string) => number | undefined): ApplyResult {
    const { policy, endpoints, ipcache, tcpLimits } = this.maps;
    const change = emptyChange();
    this.#endpointIfindex.clear();
    const endpointEntries: { key: EndpointKey; value: EndpointState }[] = [];
    for (const [podKey, endpoint] of state.endpoints) {
      const ifindex = ifindexOf(podKey);
      if (ifindex === undefined) {
        change.skippedEndpoints.push(podKey);
        continue;
      }
      this.#endpointIfindex.set(podKey, ifindex);
      endpointEntries.push({ key: { ifindex }, value: endpoint });
    }
    // Sorts the desired entries against what the map holds into upserts and removals, by each key's bytes;
    // returns how many distinct keys the map holds and how many desired ones it lacks.
    const againstMap = <K, V>(current: MapContents<K, V>, desired: MapContents<K, V>, into: MapChange): { held: number; lacking: number } => {
      const wanted = new Uint8Array(current.count);
      let lacking = 0;
      for (let i = 0; i < desired.count; i++) {
        const at = desired.findIn(current, i);
        if (at < 0) lacking++;
        else wanted[at] = 1;
        if (at < 0 || !current.sameValue(at, desired, i)) into.upserts.push(desired.encoded(i));
      }
      let held = 0;
      for (let i = 0; i < current.count; i++) {
        if (wanted[i] === 1) held++;
        else if (current.isLast(i)) {
          held++;
          into.removals.push(current.encodedKey(i));
        }
      }
      return { held, lacking };
    };
    // Encoded back to back, as a read holds them: no Buffer per entry, and views only of the entries that differ.
    const desiredPolicy = policy.encodeAll([...state.policy.values()]);
    const desiredIpcache = ipcache.encodeAll([...state.ipcache.values()]);
    const desiredEndpoints = endpoints.encodeAll(endpointEntries);
    const currentPolicy = policy.read();
    const policyCount = againstMap(currentPolicy, desiredPolicy, change.policy);
    const currentEndpoints = endpoints.read();
    againstMap(currentEndpoints, desiredEndpoints, change.endpoints);
    const ipcacheRead = this.#ipcacheRead;
    this.#ipcacheRead = undefined;
    const currentIpcache = ipcacheRead !== undefined && ipcache.unchangedSince(ipcacheRead) ? ipcacheRead : ipcache.read();
    againstMap(currentIpcache, desiredIpcache, change.ipcache);
    // Reading the mirrors costs as much as reading the maps: only when they may be off.
    if (!this.#mirrorsChecked) {
      change.mirrorFill = {
        policy: policy.pruneMirror(currentPolicy, desiredPolicy),
        ipcache: ipcache.pruneMirror(currentIpcache, desiredIpcache),
        endpoints: endpoints.pruneMirror(currentEndpoints, desiredEndpoints),
      };
    }
    againstMap(tcpLimits.read(), tcpLimits.encodeAll([...state.tcpLimits].map(([key, value]) => ({ key, value }))), change.tcpLimits);
    if (policyCount.held + policyCount.lacking > policy.maxEntries) {
      // Build new, then switch would need room for both: endpoints whose slot changes fail closed meanwhile instead.
      const changedSlots = new Set([...change.policy.upserts.map((entry) => entry.key), ...change.policy.removals].map((key) => policyKeyCodec.decode(key).slot));
      change.removalsFirst = [];
      for (let i = 0; i < currentEndpoints.count; i++) {
        const current = currentEndpoints.value(i);
        if (currentEndpoints.isLast(i) && changedSlots.has(current.slot)) {
          change.removalsFirst.push({ key: currentEndpoints.encodedKey(i), value: endpointValueCodec.encode(failClosed(current)) });
        }
      }
    }
    return this.#write(change);
  }

  #write(change: EncodedChange): ApplyResult {
    try {
      const result = this.#writeInOrder(change);
      if (change.mirrorFill !== undefined) this.#mirrorsChecked = true;
      return result;
    } catch (error) {
      this.#mirrorsChecked = false;
      throw error;
    }
  }

  #writeInOrder(change: EncodedChange): ApplyResult {
    const { policy, endpoints, ipcache, tcpLimits } = this.maps;
    // The order is the contract of StateDiff: new slots exist before endpoints switch to them,
    // and old slots go only after no endpoint points at them; a new identity's entries in a slot in
    // use exist before an ipcache entry carries it, a gone one's go after none does (the slot changed
    // in place); a limited entry finds its rule's limits.
    let removedFirst: number | undefined;
    if (change.removalsFirst !== undefined) {
      endpoints.writeEncoded(change.removalsFirst);
      removedFirst = policy.deleteEncoded(change.policy.removals);
    }
    const tcpLimitUpserts = tcpLimits.writeEncoded(change.tcpLimits.upserts);
    const result: Omit<ApplyResult, "revision"> = {
      policyUpserts: policy.writeEncoded(change.policy.upserts),
      endpointUpserts: endpoints.writeEncoded(change.endpoints.upserts),
      ipcacheUpserts: ipcache.writeEncoded(change.ipcache.upserts),
      ipcacheRemovals: ipcache.deleteEncoded(change.ipcache.removals),
      endpointRemovals: endpoints.deleteEncoded(change.endpoints.removals),
      policyRemovals: removedFirst ?? policy.deleteEncoded(change.policy.removals),
      tcpLimitUpserts,
      tcpLimitRemovals: tcpLimits.deleteEncoded(change.tcpLimits.removals),
      skippedEndpoints: change.skippedEndpoints,
    };
    // Once the maps hold everything the full sync wanted: the mirror entries their writes did not make.
    if (change.mirrorFill !== undefined) {
      policy.writeMirror(change.mirrorFill.policy);
      ipcache.writeMirror(change.mirrorFill.ipcache);
      endpoints.writeMirror(change.mirrorFill.endpoints);
    }
    const written =
      result.policyUpserts + result.endpointUpserts + result.ipcacheUpserts + result.ipcacheRemovals + result.endpointRemovals + result.policyRemovals;
    const revision = written > 0 ? this.bumpRevision() : this.readConfig().revision;
    return { ...result, revision };
  }

  /**
   * Writes the endpoint entry of an interface directly (the agent calls this
   * when a pod's interface appears after its state was computed). Replacing a
   * different entry bumps the revision so the interface's flows are re-checked.
   */
  setEndpoint(ifindex: number, state: EndpointState): void {
    const previous = this.maps.endpoints.lookup({ ifindex });
    this.maps.endpoints.update({ ifindex }, state);
    if (previous !== undefined && !sameEndpointState(previous, state)) this.bumpRevision();
  }

  /** Removes the endpoint entry of an interface (its packets are then dropped); false if there was none. */
  removeEndpoint(ifindex: number): boolean {
    for (const [podKey, known] of this.#endpointIfindex) if (known === ifindex) this.#endpointIfindex.delete(podKey);
    return this.maps.endpoints.delete({ ifindex });
  }

  /**
   * What the ipcache holds, decoded. The read is kept for the next
   * {@link replaceAll}, which uses it instead of reading the map again when
   * nothing was written through this datapath since: the agent reads the
   * ipcache at start and then makes its first full sync against it.
   */
  readIpcache(): MapIpcacheEntry[] {
    const contents = this.maps.ipcache.read();
    this.#ipcacheRead = contents;
    return Array.from({ length: contents.count }, (_, i) => ({ cidr: ipcacheKeyString(contents.key(i)), ...contents.value(i) }));
  }

  /** What the endpoint, ipcache and policy maps hold, decoded. */
  readState(): MapState {
    return {
      endpoints: new Map(this.maps.endpoints.entries().map(([key, value]) => [key.ifindex, value])),
      ipcache: this.readIpcache(),
      policy: this.maps.policy.entries().map(([key, value]) => ({ key, value })),
    };
  }

  // ---- proxy ----

  /**
   * Sets where TCP flows whose policy has HTTP rules are steered: the proxy
   * device the to-pod hook redirects out of (`ifindex`), the MAC of its
   * receiving end (`mac`), both as `installProxyRouting` returns them, and
   * the port of the proxy's transparent listener. `undefined` means no
   * proxy: such flows are then dropped (reason `proxy-unavailable`), the
   * others are not affected.
   *
   * @example
   * ```ts
   * datapath.setProxy({ ifindex: device.ifindex, port: DEFAULT_PROXY_PORT, mac: device.mac });
   * datapath.setProxy(undefined); // fail closed
   * ```
   */
  setProxy(config: ProxyConfig | undefined): void {
    if (config !== undefined && (!Number.isInteger(config.ifindex) || config.ifindex <= 0 || config.port <= 0)) {
      throw new DatapathError(`Cannot set the proxy of pin root "${this.pinRoot}": ifindex ${config.ifindex} and port ${config.port} must both be positive (pass undefined for no proxy)`);
    }
    this.maps.proxyConfig.update(0, config ?? { ifindex: 0, port: 0, mac: "00:00:00:00:00:00" });
  }

  /** The proxy flows are steered to, or undefined when there is none. */
  readProxy(): ProxyConfig | undefined {
    const config = this.maps.proxyConfig.lookup(0);
    return config === undefined || config.ifindex === 0 || config.port === 0 ? undefined : config;
  }

  // ---- attach ----

  /**
   * Attaches `pal_from_pod` to the interface's ingress and `pal_to_pod` to
   * its egress. tcx links are pinned at `<pinRoot>/links/<ifindex>-<dir>`
   * so they outlive this process; `auto` falls back to a tc clsact filter
   * when the kernel has no tcx. Idempotent: an attached hook keeps its link
   * and is switched to this instance's program (atomically, so a restarted
   * or upgraded agent's programs reach the pods it finds; tc mode replaces
   * its filter in place). Returns the mode used.
   *
   * @example
   * ```ts
   * datapath.attach(ifNameToIndex("veth1234")); // "tcx"
   * ```
   */
  attach(ifindex: number, options: { mode?: AttachMode } = {}): "tcx" | "tc" {
    return attachHooks(endpointHooks(this.pinRoot, this.#programFds, ifindex), ifindex, options.mode ?? "auto");
  }

  /**
   * Attaches `pal_to_proxy` to the ingress of the proxy device's receiving
   * end (`receiverIfindex` of `installProxyRouting`), as {@link attach}
   * does for endpoints: a tcx link pinned at
   * `<pinRoot>/links/proxy-<ifindex>-ingress`, tc clsact as the fallback.
   * Idempotent. The packets the to-pod hook steers enter the stack there.
   * Also links `pal_proxy_lookup` to the current network namespace (the
   * node's), pinned at `<pinRoot>/links/proxy-sk-lookup`: it gives the
   * proxy's listener the SYNs that meet one of the node's sockets on their
   * tuple (see bpf/lib/proxy.h).
   *
   * @example
   * ```ts
   * const device = installProxyRouting();
   * datapath.attachProxyDevice(device.receiverIfindex);
   * datapath.setProxy({ ifindex: device.ifindex, port: DEFAULT_PROXY_PORT, mac: device.mac });
   * ```
   */
  attachProxyDevice(ifindex: number, options: { mode?: AttachMode } = {}): "tcx" | "tc" {
    const pin = join(this.pinRoot, "links", PROXY_LOOKUP_LINK);
    if (!liveNetnsLink(pin, this.#proxyLookupFd)) {
      try {
        const linkFd = attachSkLookup(this.#proxyLookupFd);
        try {
          objPin(linkFd, pin);
        } finally {
          closeFd(linkFd);
        }
      } catch (error) {
        throw new DatapathError(`Cannot attach "${PROXY_LOOKUP_PROGRAM}" to the network namespace: ${describe(error)}`, { cause: error });
      }
    }
    return attachHooks(proxyHooks(this.pinRoot, this.#proxyProgramFd, ifindex), ifindex, options.mode ?? "auto");
  }

  /** Detaches `pal_to_proxy` from the interface, and `pal_proxy_lookup` from the namespace; whether anything was attached. */
  detachProxyDevice(ifindex: number): boolean {
    const pin = join(this.pinRoot, "links", PROXY_LOOKUP_LINK);
    if (existsSync(pin)) releaseLink(pin);
    return detachHooks(proxyHooks(this.pinRoot, this.#proxyProgramFd, ifindex), ifindex);
  }

  /** Pins the programs at `<pinRoot>/programs/`, replacing older ones: interfaces attached from the pins from now on run this load. */
  #pinPrograms(): void {
    mkdirSync(join(this.pinRoot, "programs"), { recursive: true });
    for (const program of Object.keys(PROGRAMS) as ProgramName[]) {
      const pin = programPin(this.pinRoot, program);
      rmSync(pin, { force: true });
      objPin(this.#programFds[program], pin);
    }
  }

  #pruneStaleLinks(): void {
    for (const name of readdirSync(join(this.pinRoot, "links"))) {
      const match = LINK_PIN.exec(name) ?? PROXY_LINK_PIN.exec(name);
      if (match !== null) liveLink(join(this.pinRoot, "links", name), Number(match[1]));
    }
  }

  /**
   * Detaches both programs from the interface: its pinned tcx links, or its
   * tc filters when it was attached in tc mode. Returns whether anything was
   * attached.
   */
  detach(ifindex: number): boolean {
    return detachHooks(endpointHooks(this.pinRoot, this.#programFds, ifindex), ifindex);
  }

  /** Interfaces with a live pinned tcx link in this pin root (both hooks or one). */
  attachedInterfaces(): number[] {
    const ifindexes = new Set<number>();
    for (const name of readdirSync(join(this.pinRoot, "links"))) {
      const match = LINK_PIN.exec(name);
      if (match !== null && liveLink(join(this.pinRoot, "links", name), Number(match[1]))) ifindexes.add(Number(match[1]));
    }
    return [...ifindexes].sort((a, b) => a - b);
  }

  // ---- test runs ----

  /**
   * Runs a program on an Ethernet frame through BPF_PROG_TEST_RUN, with the
   * skb bound to `ifindex` (which must exist: the program looks its
   * endpoint up by it). Changes maps like real traffic would.
   *
   * @example
   * ```ts
   * const { retval } = datapath.testRun("to-pod", buildPacket({ src, dst, protocol: "TCP", dport: 80 }), { ifindex });
   * ```
   */
  testRun(program: ProgramName, packet: Buffer, options: { ifindex: number; repeat?: number }): DatapathTestRun {
    if (this.#closed) throw new DatapathError(`Cannot run program "${PROGRAMS[program]}" of pin root "${this.pinRoot}": the datapath is closed`);
    const run = testRun(this.#programFds[program], packet, { ifindex: options.ifindex, repeat: options.repeat ?? 1 });
    return { retval: run.retval, durationNs: run.durationNs };
  }

  // ---- conntrack ----

  /** Every conntrack entry, decoded. */
  conntrackEntries(): ConntrackEntry[] {
    return this.maps.conntrack.entries().map(([key, value]) => ({ key, value, flow: ctFlow(key, value) }));
  }

  /**
   * Deletes conntrack entries whose deadline has passed (`nowNs`, default the
   * monotonic clock bpf_ktime_get_ns() uses) and returns how many. Sets
   * PAL_CFG_CT_LEGACY_KEYS while a live entry's key is out of canonical order
   * (one an older agent's programs wrote, keyed by the first packet's tuple),
   * and clears it once none is left, so that the programs look such keys up
   * only while there are any. Older programs that stay attached keep writing
   * them: the flag stays set until their interfaces are gone.
   */
  gcConntrack(nowNs: bigint = monotonicNowNs()): number {
    const contents = this.maps.conntrack.read();
    const expired: Buffer[] = [];
    let legacy = false;
    for (let i = 0; i < contents.count; i++) {
      const { key } = contents.encoded(i);
      if (contents.value(i).expiresNs < nowNs) expired.push(key);
      else legacy ||= !isCanonicalCtKey(key);
    }
    const deleted = this.maps.conntrack.deleteEncoded(expired);
    const config = this.readConfig();
    const flags = legacy ? config.flags | CFG_CT_LEGACY_KEYS : config.flags & ~CFG_CT_LEGACY_KEYS;
    if (flags !== config.flags) this.#writeConfig({ ...config, flags });
    return deleted;
  }

  /**
   * Makes every connection count in `pal_tcp_sources` agree with the counted
   * conntrack entries alive (see `recountTcpSources`): counts leaked by
   * entries that expired or were evicted are corrected, evicted sources
   * holding connections are made again, idle sources and sources of rules
   * without limits any more are removed. The agent runs it after each
   * conntrack collection. Without a limited rule, conntrack is not read:
   * every source is then removed whatever it holds, and decoding a full
   * table of live flows took about half a second of CPU every time.
   */
  recountTcpSources(nowNs: bigint = monotonicNowNs()): TcpSourceRecount {
    // Sources first: see recountTcpSources for why the order matters.
    const sources = this.maps.tcpSources.entries();
    const limited = new Set(this.maps.tcpLimits.keys());
    const conntrack = limited.size > 0 ? this.conntrackEntries() : [];
    const { upserts, removals } = recountTcpSources(conntrack, sources, limited, nowNs);
    return { corrected: this.maps.tcpSources.upsert(upserts), removed: this.maps.tcpSources.remove(removals) };
  }

  /** Deletes every conntrack and fragment entry (tests, and a forced re-evaluation of all flows); returns how many. */
  clearConntrack(): number {
    return this.maps.conntrack.remove(this.maps.conntrack.keys()) + this.maps.fragments.remove(this.maps.fragments.keys());
  }

  // ---- events and statistics ----

  /**
   * Delivers flow events from the ring buffer, decoded, on the event loop.
   * The subscription keeps the process alive until closed or unref'ed; a
   * record that cannot be decoded goes to `onError` (default: thrown).
   *
   * @example
   * ```ts
   * const events = datapath.events((event) => {
   *   if (event.kind === "denied") log.warn({ ...event, timestampNs: String(event.timestampNs) });
   * });
   * events.close();
   * ```
   */
  events(onEvent: (event: FlowEvent) => void, options: { onError?: (error: Error) => void } = {}): EventSubscription {
    const onRecord = (record: Buffer) => {
      let event: FlowEvent;
      try {
        event = decodeFlowEvent(record);
      } catch (error) {
        if (options.onError === undefined) throw error;
        options.onError(error as Error);
        return;
      }
      onEvent(event);
    };
    this.#checkOpen(MAP_NAMES.events);
    const reader = new RingBufferReader(this.#eventsFd, onRecord);
    const subscription: EventSubscription = {
      close: () => {
        this.#subscriptions.delete(subscription);
        reader.close();
      },
      unref: () => {
        reader.unref();
      },
    };
    this.#subscriptions.add(subscription);
    return subscription;
  }

  /** New-flow verdicts per rule id, summed over CPUs. */
  ruleStats(): Map<number, Counter> {
    return new Map(this.maps.ruleStats.entries().map(([id, counters]) => [id, sumCounters(counters)]));
  }

  /** Packets and bytes per verdict reason, summed over CPUs. */
  reasonStats(): Record<ReasonName, Counter> {
    const stats = {} as Record<ReasonName, Counter>;
    for (const [name, code] of Object.entries(REASONS) as [ReasonName, number][]) {
      stats[name] = sumCounters(this.maps.reasonStats.lookup(code) ?? []);
    }
    return stats;
  }
}

// ---- attachments, shared by an open datapath and by attachPinnedPrograms ----

function linkPin(pinRoot: string, ifindex: number, direction: TcDirection): string {
  return join(pinRoot, "links", `${ifindex}-${direction}`);
}

/** One program on one tc hook of an interface, and where its tcx link is pinned. */
interface Hook {
  direction: TcDirection;
  programFd: number;
  pin: string;
}

function endpointHooks(pinRoot: string, programFds: Record<ProgramName, number>, ifindex: number): Hook[] {
  return HOOKS.map(({ direction, program }) => ({ direction, programFd: programFds[program], pin: linkPin(pinRoot, ifindex, direction) }));
}

function proxyHooks(pinRoot: string, programFd: number, ifindex: number): Hook[] {
  return [{ direction: "ingress", programFd, pin: join(pinRoot, "links", `proxy-${ifindex}-ingress`) }];
}

function programPin(pinRoot: string, program: ProgramName): string {
  return join(pinRoot, "programs", PROGRAMS[program]);
}

/**
 * Whether the link pinned at `pin` is attached to `ifindex`. A tcx link
 * whose device went away stays pinned but reports ifindex 0 ("defunct");
 * such a pin is removed. Given `programFd`, a live link runs it from now on.
 */
function liveLink(pin: string, ifindex: number, programFd?: number): boolean {
  return pinnedLinkOn(pin, /^ifindex:\s*(\d+)/m, ifindex, programFd);
}

/** Whether the netns link pinned at `pin` is attached to the current network namespace; a pin of another (or a gone) namespace is removed. */
function liveNetnsLink(pin: string, programFd: number): boolean {
  return pinnedLinkOn(pin, /^netns_ino:\s*(\d+)/m, statSync("/proc/self/ns/net").ino, programFd);
}

/**
 * Whether the link pinned at `pin` reports `target` in the fdinfo field `field`; a pin that does not is removed.
 * A live link is switched to `programFd` when given: a link an agent of another build made (before a restart,
 * an upgrade or a downgrade) runs this build's program from now on, swapped atomically, not the one it was made with.
 */
function pinnedLinkOn(pin: string, field: RegExp, target: number, programFd?: number): boolean {
  if (!existsSync(pin)) return false;
  const linkFd = objGet(pin);
  let live: boolean;
  try {
    live = Number(field.exec(readFileSync(`/proc/self/fdinfo/${linkFd}`, "utf8"))?.[1] ?? 0) === target;
    if (live && programFd !== undefined) linkUpdate(linkFd, programFd);
  } finally {
    closeFd(linkFd);
  }
  if (!live) unlinkSync(pin);
  return live;
}

/** Detaches and unpins a link, tolerating one already defunct. */
function releaseLink(pin: string): void {
  const linkFd = objGet(pin);
  try {
    linkDetach(linkFd);
  } catch (error) {
    // A link whose device is gone was detached by the kernel already.
    if (!(error instanceof BpfError && ["ENOLINK", "EINVAL", "ENOENT"].includes(error.code))) throw error;
  } finally {
    closeFd(linkFd);
  }
  unlinkSync(pin);
}

function attachHooks(hooks: readonly Hook[], ifindex: number, mode: AttachMode): "tcx" | "tc" {
  if (mode === "tc") return attachTcFilters(hooks, ifindex);
  const attached: string[] = [];
  try {
    for (const { direction, programFd, pin } of hooks) {
      if (liveLink(pin, ifindex, programFd)) continue;
      const linkFd = attachTcx(programFd, ifindex, direction);
      try {
        objPin(linkFd, pin);
        attached.push(pin);
      } finally {
        closeFd(linkFd);
      }
    }
    return "tcx";
  } catch (error) {
    // Half an attachment is worse than none: undo the hook this call made.
    for (const pin of attached) releaseLink(pin);
    if (mode === "auto" && error instanceof BpfError && error.operation === "bpf_link_create" && NO_TCX.has(error.code)) {
      return attachTcFilters(hooks, ifindex);
    }
    throw new DatapathError(`Cannot attach to ifindex ${ifindex} with tcx: ${describe(error)}`, { cause: error });
  }
}

function attachTcFilters(hooks: readonly Hook[], ifindex: number): "tc" {
  for (const { direction, programFd } of hooks) {
    try {
      attachTc(programFd, ifindex, direction, TC_FILTER);
    } catch (error) {
      throw new DatapathError(`Cannot attach to ${direction} of ifindex ${ifindex} with tc: ${describe(error)}`, { cause: error });
    }
  }
  return "tc";
}

/** Detaches hooks: their pinned tcx links, or their tc filters when attached in tc mode. Whether anything was attached. */
function detachHooks(hooks: readonly Hook[], ifindex: number): boolean {
  let detached = false;
  for (const { direction, pin } of hooks) {
    if (!existsSync(pin)) continue;
    try {
      releaseLink(pin);
    } catch (error) {
      throw new DatapathError(`Cannot detach from ${direction} of ifindex ${ifindex}: ${describe(error)}`, { cause: error });
    }
    detached = true;
  }
  if (detached) return true;
  for (const { direction } of hooks) {
    try {
      detached = detachTc(ifindex, direction, TC_FILTER) || detached;
    } catch (error) {
      // No clsact qdisc or no device: nothing of ours is attached there.
      if (!(error instanceof BpfError && ["ENOENT", "EINVAL", "ENODEV"].includes(error.code))) {
        throw new DatapathError(`Cannot detach tc filter from ${direction} of ifindex ${ifindex}: ${describe(error)}`, { cause: error });
      }
    }
  }
  return detached;
}

/**
 * Whether both hooks of `ifindex` have a live tcx link pinned under `pinRoot`.
 *
 * @example
 * ```ts
 * pinnedLinksLive("/sys/fs/bpf/palisade", ifNameToIndex("veth1234")); // true once attached
 * ```
 */
export function pinnedLinksLive(pinRoot: string, ifindex: number): boolean {
  return HOOKS.every(({ direction }) => liveLink(linkPin(pinRoot, ifindex, direction), ifindex));
}

/**
 * Attaches the programs an agent pinned under `pinRoot` to an interface,
 * exactly as {@link Datapath.attach} does, without loading anything: the CNI
 * plugin calls it as a pod's interface is created, so the pod's first packet
 * already meets the program (which drops it until the agent writes the
 * endpoint's entry).
 *
 * @example
 * ```ts
 * attachPinnedPrograms("/sys/fs/bpf/palisade", ifNameToIndex("veth1234")); // "tcx"
 * ```
 * @throws {DatapathError} when no agent pinned programs there, or attaching fails.
 */
export function attachPinnedPrograms(pinRoot: string, ifindex: number): "tcx" | "tc" {
  const fds: Partial<Record<ProgramName, number>> = {};
  try {
    for (const program of Object.keys(PROGRAMS) as ProgramName[]) {
      const pin = programPin(pinRoot, program);
      if (!existsSync(pin)) throw new DatapathError(`Cannot attach to ifindex ${ifindex} from pin root "${pinRoot}": no agent has pinned its programs there yet (${pin} is missing)`);
      fds[program] = objGet(pin);
    }
    return attachHooks(endpointHooks(pinRoot, fds as Record<ProgramName, number>, ifindex), ifindex, "auto");
  } finally {
    for (const fd of Object.values(fds)) closeFd(fd);
  }
}
