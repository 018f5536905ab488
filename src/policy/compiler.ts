/**
 * The policy compiler: turns namespaces, pods, policies and host addresses
 * into {@link DesiredState} (ipcache, endpoints, policy entries), and keeps
 * doing so incrementally: each mutation marks only what it touches dirty,
 * and {@link PolicyCompiler.commit} recomputes just that and returns the
 * change as a {@link StateDiff}.
 *
 * How exactness is kept without per-rule work in the kernel:
 * - Every distinct CIDR used by an ipBlock (cidr or except) of any policy is
 *   an ipcache prefix. The "class" of an address is the longest such prefix
 *   containing it; an ipBlock matches an address iff it contains the class
 *   and no except contains it (prefixes containing one point are nested).
 * - An identity stands for everything policy can ask about an address: for
 *   a pod IP its namespace (name, labels), pod labels, named ports and class;
 *   for a host IP its class; for a prefix entry the prefix itself. Equal
 *   attributes share one identity, so replicas cost one identity.
 * - Each policy entry stores the combination of every rule item covering
 *   its key, so the kernel's longest-prefix match alone is the answer.
 * - Slots are content-addressed: endpoints with identical entries share a
 *   slot; changed content gets a fresh slot ("build new, then switch").
 * - An address claimed twice gets one entry: a host IP beats pods, a pod IP
 *   beats a policy prefix of the same text, and among pods the smallest key
 *   wins. Among rules deciding one entry, the first in reference order
 *   (kind, namespace, name, direction, index) names it, so the choice never
 *   depends on how ids were numbered.
 *
 * @module
 */
import type { AnyPolicy, PolicyMode, RuleAction } from "./api-types.ts";
import {
  DIRECTION_EGRESS,
  DIRECTION_INGRESS,
  EP_AUDIT_ISOLATED_EGRESS,
  EP_AUDIT_ISOLATED_INGRESS,
  EP_ISOLATED_EGRESS,
  EP_ISOLATED_INGRESS,
  emptyDiff,
  IDENTITY_ANY,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  IPCACHE_HOST,
  policyKeyString,
  PROTOCOL_NUMBERS,
  VERDICT_ALLOW,
  VERDICT_DENY,
  VERDICT_NONE,
} from "./desired-state.ts";
import type {
  DesiredState,
  Direction,
  EndpointState,
  IdentityInfo,
  IpcacheEntry,
  PolicyEntry,
  PolicyKey,
  PolicyValue,
  PolicyVerdict,
  RuleRef,
  StateDiff,
} from "./desired-state.ts";
import { LocalIdentityAllocator } from "./identity.ts";
import { canonicalNamedPorts, cidrIdentity, describeIdentity, hostIdentity, identityKey, podIdentity, sameLabels } from "./identity-key.ts";
import type { IdentityAttributes } from "./identity-key.ts";
import type { IdentityAllocator } from "./identity.ts";
import { CidrSet, formatCidr, hostCidr, IpParseError, parseCidr, parseIp, cidrContains } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import { ANY_PORT_RANGE, normalizePolicy, policyObjectKey } from "./normalized-policy.ts";
import type { NamedPortRef, NormalizedPeer, NormalizedPolicy, NormalizedRule, PolicyKind, PortRange } from "./normalized-policy.ts";
import { PORT_BITS, portPrefixRange } from "./port-ranges.ts";
import { matchesSelector } from "./selector.ts";
import { podKey } from "./world.ts";
import type { NamedPort, NamespaceInfo, PodInfo, World } from "./world.ts";
import { PolicyError } from "./validate.ts";

export type { PolicyKind } from "./normalized-policy.ts";

/** Options of a {@link PolicyCompiler}. */
export interface PolicyCompilerOptions {
  /** Where identities come from; a {@link LocalIdentityAllocator} by default. */
  identities?: IdentityAllocator;
  /** Only pods on this node become endpoints (all pods still get ipcache entries); every pod if absent. */
  nodeName?: string;
  /**
   * Computes the ipcache and its identities only, no endpoints or policy
   * entries: what the operator's cluster-wide identity allocation needs.
   */
  identitiesOnly?: boolean;
}

/** How big the desired state is, see {@link PolicyCompiler.stateCounts}. */
export interface StateCounts {
  policyEntries: number;
  /** Local pods with endpoint state. */
  endpoints: number;
  /** Identities described (in use, and the reserved ones). */
  identities: number;
}

/** How much work the last commit did: what incremental compilation is measured by. */
export interface CommitStats {
  /** Policies whose records (rules, selection) were rebuilt. */
  policies: number;
  /** Ipcache keys whose entry was recomputed. */
  ipcacheKeys: number;
  /** Identities that came into use and went out of use. */
  identitiesAdded: number;
  identitiesRemoved: number;
  /** Endpoints whose flags and entries were recomputed. */
  endpoints: number;
}

interface CompiledRule {
  parsed: NormalizedRule;
  id: number;
  /** Sort key of the rule's reference: the tie-break among rules deciding one entry. */
  order: string;
  mode: PolicyMode;
  /**
   * Identities the rule's items target: those its peers match, or, for an
   * any-peer egress rule, the pod identities having one of its named ports.
   */
  identities: Set<number>;
}

interface PolicyRecord {
  parsed: NormalizedPolicy;
  rules: CompiledRule[];
  /** Pod keys of the policy's namespace its selector matches. */
  selected: Set<string>;
}

interface IdentityRecord extends IdentityAttributes {
  /** 0 until allocated at the end of the ipcache phase of a commit. */
  id: number;
  key: string;
  /** Ipcache entries using this identity. */
  users: number;
}

/** Who claims an ipcache key: host and pods for an address, policies for a prefix. */
interface IpcacheSource {
  cidr: Cidr;
  host: boolean;
  pods: Set<string>;
  prefix: boolean;
}

interface IpcacheBinding {
  record: IdentityRecord;
  flags: number;
  /** "host", "prefix" or the pod key that won the address. */
  owner: string;
}

interface PodRecord {
  namespace: string;
  /** Canonical host CIDR texts of the pod's IPs, deduplicated, in order. */
  ipTexts: string[];
}

interface EndpointRecord {
  state: EndpointState;
  contentKey: string;
}

interface SlotRecord {
  contentKey: string;
  slot: number;
  users: number;
  entries: PolicyEntry[];
}

/**
 * The entries the rule items of one (identity, direction) yield, without
 * slot and identity, and their canonical text. Groups with the same items
 * share one template: computed once per commit, and one value object per
 * distinct value.
 */
interface GroupTemplate {
  text: string;
  entries: (Pick<PolicyKey, "protocol" | "port" | "portPrefixLen"> & { value: PolicyValue })[];
}

/** The entries of a slot, as templates per (identity, direction), and their canonical text: the slot's content address. */
interface SlotContent {
  key: string;
  groups: { identity: number; direction: Direction; template: GroupTemplate }[];
}

/** A port range of a rule, as one (identity, direction) group collects it. */
interface RuleItem {
  port: PortRange;
  rule: CompiledRule;
}

/** Items a rule contributes to each group it reaches, and their text for the group's signature. */
interface RuleItems {
  items: RuleItem[];
  signature: string;
}

function ruleRefKey(policy: NormalizedPolicy, rule: NormalizedRule): string {
  return `${policy.key}/${rule.direction}/${rule.index}`;
}

function resolveNamedPort(ref: NamedPortRef, ports: readonly NamedPort[]): PortRange[] {
  const protocol = PROTOCOL_NUMBERS[ref.protocol];
  return ports
    .filter((p) => p.name === ref.name && p.protocol === ref.protocol)
    .map((p) => ({ protocol, lo: p.port, hi: p.port, prefixes: [{ port: p.port, prefixLen: PORT_BITS }] }));
}

/** The key of host addresses outside every policy prefix: they get the reserved HOST identity, never an allocated one. */
const RESERVED_HOST_KEY = identityKey(hostIdentity(undefined));

const RESERVED_IDENTITIES: IdentityInfo[] = [
  { id: IDENTITY_HOST, description: "host: an address of this node outside every policy prefix" },
  { id: IDENTITY_WORLD, description: "world: an address outside every policy prefix and not a pod's" },
];

function peerMatches(peer: NormalizedPeer, policyNamespace: string, identity: IdentityRecord): boolean {
  if (peer.ipBlock) {
    const cls = identity.cls;
    return (
      cls !== undefined && cidrContains(peer.ipBlock.cidr, cls) && !peer.ipBlock.except.some((e) => cidrContains(e, cls))
    );
  }
  if (identity.kind !== "pod") return false;
  if (peer.namespaceSelector) {
    if (!matchesSelector(peer.namespaceSelector, identity.namespaceLabels)) return false;
  } else if (identity.namespace !== policyNamespace) {
    return false;
  }
  return peer.podSelector === undefined || matchesSelector(peer.podSelector, identity.podLabels);
}

function ruleTargets(rule: NormalizedRule, policyNamespace: string, identity: IdentityRecord): boolean {
  if (rule.peers) return rule.peers.some((peer) => peerMatches(peer, policyNamespace, identity));
  // An any-peer rule reaches every identity through IDENTITY_ANY, except for
  // egress named ports, which resolve against each destination pod identity.
  return (
    rule.direction === "Egress" &&
    identity.kind === "pod" &&
    (rule.ports?.named ?? []).some((ref) => resolveNamedPort(ref, identity.namedPorts).length > 0)
  );
}

function decide(rules: CompiledRule[], action: RuleAction, enforcedOnly: boolean): CompiledRule | undefined {
  let best: CompiledRule | undefined;
  for (const rule of rules) {
    if (rule.parsed.action !== action || (enforcedOnly && rule.mode !== "Enforce")) continue;
    if (!best || rule.order < best.order) best = rule;
  }
  return best;
}

/** The verdict of the rules covering an entry, and the rule that decided it: Deny beats Allow; ties go to the first rule in reference order. */
function verdictOf(rules: CompiledRule[], enforcedOnly: boolean): [PolicyVerdict, number] {
  const deny = decide(rules, "Deny", enforcedOnly);
  if (deny) return [VERDICT_DENY, deny.id];
  const allow = decide(rules, "Allow", enforcedOnly);
  if (allow) return [VERDICT_ALLOW, allow.id];
  return [VERDICT_NONE, 0];
}

function ruleItems(rule: CompiledRule, ports: PortRange[]): RuleItems {
  return {
    items: ports.map((port) => ({ port, rule })),
    signature: ports.map((p) => `${p.protocol},${p.lo},${p.hi},${rule.id};`).join(""),
  };
}

function sameEndpointState(a: EndpointState, b: EndpointState): boolean {
  return a.endpointId === b.endpointId && a.identity === b.identity && a.slot === b.slot && a.flags === b.flags;
}

/**
 * The incremental policy compiler. Feed it objects as they change, then
 * `commit()` to get the diff to apply; `state()` is the full result.
 *
 * @example
 * ```ts
 * const compiler = new PolicyCompiler();
 * compiler.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
 * compiler.upsertPod({ namespace: "x", name: "a", labels: { pod: "a" }, ips: ["10.0.0.1"], namedPorts: [] });
 * compiler.upsertPolicy(denyAllIngress);
 * const diff = compiler.commit(); // apply with the datapath
 * ```
 */
export class PolicyCompiler {
  readonly #allocator: IdentityAllocator;
  readonly #nodeName: string | undefined;
  readonly #identitiesOnly: boolean;

  // Inputs, as of the latest mutation.
  readonly #namespaces = new Map<string, NamespaceInfo>();
  readonly #pods = new Map<string, PodInfo>();
  readonly #podIps = new Map<string, string[]>();
  readonly #policies = new Map<string, NormalizedPolicy>();
  #hostIpTexts: string[] = [];

  // What changed since the last commit.
  readonly #dirtyNamespaces = new Set<string>();
  readonly #dirtyPods = new Set<string>();
  readonly #dirtyPolicies = new Set<string>();
  #dirtyHosts = false;
  /** Addresses whose identity key may have got a number: see {@link PolicyCompiler.identitiesChanged}. */
  readonly #retryIpcache = new Set<string>();

  // Derived state, as of the last commit.
  readonly #policyRecords = new Map<string, PolicyRecord>();
  readonly #policiesByNamespace = new Map<string, Set<string>>();
  readonly #podRecords = new Map<string, PodRecord>();
  readonly #podsByNamespace = new Map<string, Set<string>>();
  #committedHostTexts: string[] = [];
  readonly #prefixUsers = new Map<string, { cidr: Cidr; users: number }>();
  readonly #prefixes = new CidrSet();
  readonly #sources = new Map<string, IpcacheSource>();
  readonly #bindings = new Map<string, IpcacheBinding>();
  readonly #identitiesByKey = new Map<string, IdentityRecord>();
  readonly #identitiesById = new Map<number, IdentityRecord>();
  /** Addresses whose wanted identity is pending at the allocator, and that key. */
  readonly #pendingIpcache = new Map<string, string>();
  readonly #ruleIds = new Map<string, number>();
  #nextRuleId = 1;
  readonly #endpointRecords = new Map<string, EndpointRecord>();
  #nextEndpointId = 1;
  readonly #slots = new Map<string, SlotRecord>();
  #nextSlot = 1;
  #stats: CommitStats = { policies: 0, ipcacheKeys: 0, identitiesAdded: 0, identitiesRemoved: 0, endpoints: 0 };

  // What the narrow reads answer from, kept up to date by commit(); the rest
  // of the desired state is read off the records above by state().
  readonly #rules = new Map<number, RuleRef>();
  readonly #identityInfo = new Map<number, IdentityInfo>(RESERVED_IDENTITIES.map((info) => [info.id, info]));
  readonly #podByEndpointId = new Map<number, string>();
  #policyEntries = 0;

  /** Creates an empty compiler. */
  constructor(options: PolicyCompilerOptions = {}) {
    this.#allocator = options.identities ?? new LocalIdentityAllocator();
    this.#nodeName = options.nodeName;
    this.#identitiesOnly = options.identitiesOnly ?? false;
  }

  /** Adds or replaces a namespace. */
  upsertNamespace(ns: NamespaceInfo): void {
    const old = this.#namespaces.get(ns.name);
    if (old && sameLabels(old.labels, ns.labels)) return;
    this.#namespaces.set(ns.name, { name: ns.name, labels: { ...ns.labels } });
    this.#dirtyNamespaces.add(ns.name);
  }

  /** Removes a namespace; its pods (if any remain) then see empty namespace labels. */
  deleteNamespace(name: string): void {
    if (this.#namespaces.delete(name)) this.#dirtyNamespaces.add(name);
  }

  /**
   * Adds or replaces a pod (its IPs validated, as `buildWorld` leaves them).
   *
   * @throws {PolicyError} naming the pod and field when an IP does not parse; nothing changes then.
   */
  upsertPod(pod: PodInfo): void {
    const key = podKey(pod.namespace, pod.name);
    const texts = pod.ips.map((ip, i) => {
      try {
        return formatCidr(hostCidr(parseIp(ip)));
      } catch (cause) {
        if (!(cause instanceof IpParseError)) throw cause;
        throw new PolicyError({ kind: "Pod", namespace: pod.namespace, name: pod.name, field: `ips[${i}]`, detail: `${JSON.stringify(ip)} is not a valid IP address`, cause });
      }
    });
    this.#pods.set(key, { ...pod, labels: { ...pod.labels }, ips: [...pod.ips], namedPorts: canonicalNamedPorts(pod.namedPorts) });
    this.#podIps.set(key, [...new Set(texts)]);
    this.#dirtyPods.add(key);
  }

  /** Removes a pod. */
  deletePod(namespace: string, name: string): void {
    const key = podKey(namespace, name);
    if (!this.#pods.delete(key)) return;
    this.#podIps.delete(key);
    this.#dirtyPods.add(key);
  }

  /**
   * Adds or replaces a policy, valid as validation leaves it (see {@link normalizePolicy}).
   *
   * @throws {PolicyError} naming the field of a policy that skipped validation and cannot be converted; nothing changes then.
   */
  upsertPolicy(policy: AnyPolicy): void {
    const parsed = normalizePolicy(policy);
    this.#policies.set(parsed.key, parsed);
    this.#dirtyPolicies.add(parsed.key);
  }

  /** Removes a policy. */
  deletePolicy(kind: PolicyKind, namespace: string, name: string): void {
    const key = policyObjectKey(kind, namespace, name);
    if (this.#policies.delete(key)) this.#dirtyPolicies.add(key);
  }

  /**
   * Sets the node's addresses (validated, as `buildWorld` and the agent's
   * conversion leave them): ingress from them is always allowed.
   *
   * @throws {IpParseError} when an address does not parse; nothing changes then.
   */
  setHostIPs(ips: string[]): void {
    const texts = ips.map((ip) => formatCidr(hostCidr(parseIp(ip))));
    this.#hostIpTexts = [...new Set(texts)];
    this.#dirtyHosts = true;
  }

  /**
   * Tells the compiler that the allocator may now answer differently for
   * `keys`: the next commit asks again for addresses waiting for one of
   * them, and gives addresses holding one of them the key's number now
   * (a fresh identity record, so rules and endpoints follow).
   */
  identitiesChanged(keys: Iterable<string>): void {
    const changed = new Set(keys);
    for (const [text, key] of this.#pendingIpcache) if (changed.has(key)) this.#retryIpcache.add(text);
    const renumbered = new Set<IdentityRecord>();
    for (const key of changed) {
      const record = this.#identitiesByKey.get(key);
      if (record === undefined || record.id === 0 || record.key === RESERVED_HOST_KEY) continue;
      this.#identitiesByKey.delete(key);
      renumbered.add(record);
    }
    if (renumbered.size === 0) return;
    for (const [text, binding] of this.#bindings) if (renumbered.has(binding.record)) this.#retryIpcache.add(text);
  }

  /**
   * Identity keys that addresses need and the allocator has no number for
   * yet, sorted. Such an address is left out of the ipcache (or keeps the
   * identity its owner had), so no rule meant for someone else can match it.
   */
  pendingIdentityKeys(): string[] {
    return [...new Set(this.#pendingIpcache.values())].sort();
  }

  /** Everything changed since the last commit, as a diff; the internal state advances. */
  commit(): StateDiff {
    const diff = emptyDiff();
    const idle =
      this.#dirtyPolicies.size + this.#dirtyPods.size + this.#dirtyNamespaces.size + this.#retryIpcache.size === 0 && !this.#dirtyHosts;
    if (idle) {
      this.#stats = { policies: 0, ipcacheKeys: 0, identitiesAdded: 0, identitiesRemoved: 0, endpoints: 0 };
      return diff;
    }
    const dirtyEndpoints = new Set<string>();
    const dirtyIpcache = new Set<string>(this.#retryIpcache);
    this.#retryIpcache.clear();
    const freshPolicies = this.#commitPolicies(dirtyEndpoints, dirtyIpcache);
    this.#commitPods(dirtyEndpoints, dirtyIpcache);
    this.#commitHosts(dirtyIpcache);
    const { added, removed } = this.#commitIpcache(dirtyIpcache, dirtyEndpoints, diff);
    if (!this.#identitiesOnly) {
      this.#commitPeers(freshPolicies, added, removed, dirtyEndpoints);
      this.#commitEndpoints(dirtyEndpoints, diff);
    }
    this.#stats = {
      policies: freshPolicies.size,
      ipcacheKeys: dirtyIpcache.size,
      identitiesAdded: added.length,
      identitiesRemoved: removed.length,
      endpoints: dirtyEndpoints.size,
    };
    return diff;
  }

  /** How much work the last commit did. */
  get lastCommitStats(): CommitStats {
    return { ...this.#stats };
  }

  /**
   * The whole desired state after the last commit, as a snapshot built on
   * each call (its size in time and memory): for a full sync, `explain` and
   * tests. What a commit needs to read goes through the narrow reads below,
   * which copy nothing.
   */
  state(): DesiredState {
    const policy = new Map<string, PolicyEntry>();
    for (const slot of this.#slots.values()) for (const entry of slot.entries) policy.set(policyKeyString(entry.key), entry);
    const ipcache = new Map<string, IpcacheEntry>();
    for (const [text, binding] of this.#bindings) ipcache.set(text, { cidr: text, identity: binding.record.id, flags: binding.flags });
    return {
      ipcache,
      endpoints: new Map([...this.#endpointRecords].map(([key, record]) => [key, record.state])),
      policy,
      rules: new Map(this.#rules),
      identities: new Map(this.#identityInfo),
    };
  }

  /**
   * The endpoint state of a local pod after the last commit.
   *
   * @example
   * ```ts
   * compiler.endpointOf("shop/api"); // { endpointId: 3, identity: 257, slot: 2, flags: 1 }
   * ```
   */
  endpointOf(pod: string): EndpointState | undefined {
    return this.#endpointRecords.get(pod)?.state;
  }

  /**
   * The pod key of an endpoint id, as flow events carry it.
   *
   * @example
   * ```ts
   * compiler.podOfEndpoint(event.endpointId); // "shop/api"
   * ```
   */
  podOfEndpoint(endpointId: number): string | undefined {
    return this.#podByEndpointId.get(endpointId);
  }

  /**
   * What a rule id of the policy entries stands for.
   *
   * @example
   * ```ts
   * compiler.rule(event.ruleId); // { kind: "NetworkPolicy", namespace: "shop", name: "api", direction: "Ingress", index: 0, … }
   * ```
   */
  rule(id: number): RuleRef | undefined {
    return this.#rules.get(id);
  }

  /**
   * How big the desired state is: what the agent's metrics report.
   *
   * @example
   * ```ts
   * compiler.stateCounts(); // { policyEntries: 10250, endpoints: 100, identities: 57 }
   * ```
   */
  stateCounts(): StateCounts {
    return { policyEntries: this.#policyEntries, endpoints: this.#endpointRecords.size, identities: this.#identityInfo.size };
  }

  /** Rebuilds records of changed policies; returns their keys. Marks old and new selections dirty, tracks prefixes. */
  #commitPolicies(dirtyEndpoints: Set<string>, dirtyIpcache: Set<string>): Set<string> {
    const fresh = new Set<string>();
    const touchedPrefixes = new Set<string>();
    for (const key of this.#dirtyPolicies) {
      const old = this.#policyRecords.get(key);
      const parsed = this.#policies.get(key);
      const keptRules = new Set<string>();
      const record = parsed && this.#buildPolicyRecord(parsed, keptRules);
      if (old) {
        for (const pod of old.selected) dirtyEndpoints.add(pod);
        for (const text of old.parsed.prefixes.keys()) {
          const use = this.#prefixUsers.get(text) as { cidr: Cidr; users: number };
          if (--use.users === 0) this.#prefixUsers.delete(text);
          touchedPrefixes.add(text);
        }
        for (const rule of old.rules) {
          const refKey = ruleRefKey(old.parsed, rule.parsed);
          if (keptRules.has(refKey)) continue;
          this.#ruleIds.delete(refKey);
          this.#rules.delete(rule.id);
        }
        this.#policiesByNamespace.get(old.parsed.namespace)?.delete(key);
        this.#policyRecords.delete(key);
      }
      if (record) {
        for (const pod of record.selected) dirtyEndpoints.add(pod);
        for (const [text, cidr] of record.parsed.prefixes) {
          const use = this.#prefixUsers.get(text);
          if (use) use.users++;
          else this.#prefixUsers.set(text, { cidr, users: 1 });
          touchedPrefixes.add(text);
        }
        this.#indexAdd(this.#policiesByNamespace, record.parsed.namespace, key);
        this.#policyRecords.set(key, record);
        fresh.add(key);
      }
    }
    this.#dirtyPolicies.clear();

    const changed = new CidrSet();
    for (const text of touchedPrefixes) {
      const use = this.#prefixUsers.get(text);
      const source = this.#sources.get(text);
      if (Boolean(use) === Boolean(source?.prefix)) continue;
      const cidr = use?.cidr ?? (source as IpcacheSource).cidr;
      this.#source(text, cidr).prefix = Boolean(use);
      if (use) this.#prefixes.add(cidr);
      else this.#prefixes.delete(cidr);
      changed.add(cidr);
      dirtyIpcache.add(text);
    }
    // Only addresses inside an added or removed prefix can change class.
    if (!changed.empty) {
      for (const [text, source] of this.#sources) {
        if (!source.host && source.pods.size === 0) continue;
        if (changed.longestMatch({ family: source.cidr.family, value: source.cidr.network })) dirtyIpcache.add(text);
      }
    }
    return fresh;
  }

  #buildPolicyRecord(parsed: NormalizedPolicy, keptRules: Set<string>): PolicyRecord {
    const rules = parsed.rules.map((rule): CompiledRule => {
      const refKey = ruleRefKey(parsed, rule);
      keptRules.add(refKey);
      let id = this.#ruleIds.get(refKey);
      if (id === undefined) {
        id = this.#nextRuleId++;
        this.#ruleIds.set(refKey, id);
      }
      this.#rules.set(id, {
        kind: parsed.kind,
        namespace: parsed.namespace,
        name: parsed.name,
        direction: rule.direction,
        index: rule.index,
        action: rule.action,
        mode: parsed.mode,
      });
      return {
        parsed: rule,
        id,
        order: `${parsed.kind}\u0000${parsed.namespace}\u0000${parsed.name}\u0000${rule.direction}\u0000${String(rule.index).padStart(8, "0")}`,
        mode: parsed.mode,
        identities: new Set(),
      };
    });
    const selected = new Set<string>();
    // Pods changed in this commit are (re)matched by #commitPods, which runs next.
    for (const key of this.#podsByNamespace.get(parsed.namespace) ?? []) {
      const pod = this.#pods.get(key);
      if (pod && matchesSelector(parsed.selector, pod.labels)) selected.add(key);
    }
    return { parsed, rules, selected };
  }

  /** Moves changed pods' address claims and policy selections; marks their endpoints and addresses dirty. */
  #commitPods(dirtyEndpoints: Set<string>, dirtyIpcache: Set<string>): void {
    for (const key of this.#dirtyPods) {
      const pod = this.#pods.get(key);
      const old = this.#podRecords.get(key);
      if (!pod && !old) continue; // added and deleted between two commits
      dirtyEndpoints.add(key);
      const namespace = pod?.namespace ?? (old as PodRecord).namespace;
      for (const text of old?.ipTexts ?? []) {
        (this.#sources.get(text) as IpcacheSource).pods.delete(key);
        dirtyIpcache.add(text);
      }
      if (pod) {
        const ipTexts = this.#podIps.get(key) as string[];
        for (const text of ipTexts) {
          this.#source(text, parseCidr(text)).pods.add(key);
          dirtyIpcache.add(text);
        }
        this.#podRecords.set(key, { namespace, ipTexts });
        this.#indexAdd(this.#podsByNamespace, namespace, key);
      } else {
        this.#podRecords.delete(key);
        this.#podsByNamespace.get(namespace)?.delete(key);
      }
      for (const policyKey of this.#policiesByNamespace.get(namespace) ?? []) {
        const record = this.#policyRecords.get(policyKey) as PolicyRecord;
        if (pod && matchesSelector(record.parsed.selector, pod.labels)) record.selected.add(key);
        else record.selected.delete(key);
      }
    }
    this.#dirtyPods.clear();
    // Namespace labels are part of every pod identity of the namespace.
    for (const namespace of this.#dirtyNamespaces) {
      for (const key of this.#podsByNamespace.get(namespace) ?? []) {
        for (const text of (this.#podRecords.get(key) as PodRecord).ipTexts) dirtyIpcache.add(text);
      }
    }
    this.#dirtyNamespaces.clear();
  }

  #commitHosts(dirtyIpcache: Set<string>): void {
    if (!this.#dirtyHosts) return;
    for (const text of this.#committedHostTexts) {
      (this.#sources.get(text) as IpcacheSource).host = false;
      dirtyIpcache.add(text);
    }
    for (const text of this.#hostIpTexts) {
      this.#source(text, parseCidr(text)).host = true;
      dirtyIpcache.add(text);
    }
    this.#committedHostTexts = this.#hostIpTexts;
    this.#dirtyHosts = false;
  }

  /**
   * Recomputes the ipcache entries of dirty keys, allocating and releasing
   * identities as their use starts and ends. Returns the identities that
   * came and went; marks endpoints whose own identity may have changed.
   *
   * An address whose identity is pending at the allocator keeps its entry if
   * the same owner had one (its previous labels, as before the change was
   * seen); otherwise it has none (a host address gets the reserved host
   * identity), and it is retried by {@link PolicyCompiler.identitiesChanged}.
   */
  #commitIpcache(
    dirty: Set<string>,
    dirtyEndpoints: Set<string>,
    diff: StateDiff,
  ): { added: IdentityRecord[]; removed: number[] } {
    const pending = new Map<string, IpcacheBinding | undefined>();
    const touched = new Set<IdentityRecord>();
    const added: IdentityRecord[] = [];
    const unanswered = new Set<IdentityRecord>();
    const identify = (record: IdentityRecord): boolean => {
      if (record.id !== 0) return true;
      if (unanswered.has(record)) return false;
      const id = record.key === RESERVED_HOST_KEY ? IDENTITY_HOST : this.#allocator.allocate(record.key);
      if (id === undefined) {
        unanswered.add(record);
        // Forgotten below unless an address binds it.
        touched.add(record);
        return false;
      }
      record.id = id;
      added.push(record);
      return true;
    };
    for (const text of dirty) {
      this.#pendingIpcache.delete(text);
      let wanted = this.#wantedBinding(text);
      const current = this.#bindings.get(text);
      if (wanted && !identify(wanted.record)) {
        this.#pendingIpcache.set(text, wanted.record.key);
        if (current?.owner === wanted.owner) continue;
        if (wanted.owner === "host") {
          const record = this.#identityRecord(hostIdentity(undefined));
          identify(record);
          wanted = { record, flags: IPCACHE_HOST, owner: "host" };
        } else {
          wanted = undefined;
        }
      }
      // Records compare by object: a renumbered key has a fresh record for the same key.
      if (wanted?.record === current?.record && wanted?.flags === current?.flags && wanted?.owner === current?.owner) {
        continue;
      }
      if (current) {
        current.record.users--;
        touched.add(current.record);
      }
      if (wanted) {
        wanted.record.users++;
        touched.add(wanted.record);
      }
      pending.set(text, wanted);
    }

    // Numbers are taken above, before these releases: an allocator never hands out a number still referenced.
    const removed: number[] = [];
    for (const record of touched) {
      if (record.users > 0) continue;
      if (this.#identitiesByKey.get(record.key) === record) this.#identitiesByKey.delete(record.key);
      if (record.id === 0) continue;
      this.#identitiesById.delete(record.id);
      removed.push(record.id);
      if (record.key === RESERVED_HOST_KEY) continue;
      this.#allocator.release(record.key, record.id);
      this.#identityInfo.delete(record.id);
    }
    for (const record of added) {
      this.#identitiesById.set(record.id, record);
      if (record.key !== RESERVED_HOST_KEY) this.#identityInfo.set(record.id, { id: record.id, description: describeIdentity(record) });
    }

    for (const [text, wanted] of pending) {
      const current = this.#bindings.get(text);
      if (wanted) {
        this.#bindings.set(text, wanted);
        if (!current || current.record.id !== wanted.record.id || current.flags !== wanted.flags) {
          diff.ipcacheUpserts.push({ cidr: text, identity: wanted.record.id, flags: wanted.flags });
        }
      } else {
        this.#bindings.delete(text);
        diff.ipcacheRemovals.push(text);
      }
      if (current?.owner !== wanted?.owner || current?.record !== wanted?.record) {
        for (const pod of this.#sources.get(text)?.pods ?? []) dirtyEndpoints.add(pod);
      }
    }
    for (const text of dirty) {
      const source = this.#sources.get(text);
      if (source && !source.host && !source.prefix && source.pods.size === 0) this.#sources.delete(text);
    }
    return { added, removed };
  }

  /** What the ipcache entry of a key should be now: the host beats pods (smallest key first) beats a prefix. */
  #wantedBinding(text: string): IpcacheBinding | undefined {
    const source = this.#sources.get(text);
    if (!source) return undefined;
    if (source.host || source.pods.size > 0) {
      const cls = this.#prefixes.longestMatch({ family: source.cidr.family, value: source.cidr.network });
      if (source.host) {
        return { record: this.#identityRecord(hostIdentity(cls)), flags: IPCACHE_HOST, owner: "host" };
      }
      const owner = [...source.pods].sort()[0] as string;
      const pod = this.#pods.get(owner) as PodInfo;
      const namespaceLabels = this.#namespaces.get(pod.namespace)?.labels ?? {};
      const record = this.#identityRecord(podIdentity(pod.namespace, namespaceLabels, pod.labels, pod.namedPorts, cls));
      return { record, flags: 0, owner };
    }
    if (source.prefix) {
      return { record: this.#identityRecord(cidrIdentity(source.cidr)), flags: 0, owner: "prefix" };
    }
    return undefined;
  }

  #identityRecord(attributes: IdentityAttributes): IdentityRecord {
    const key = identityKey(attributes);
    let record = this.#identitiesByKey.get(key);
    if (!record) {
      record = { ...attributes, id: 0, key, users: 0 };
      this.#identitiesByKey.set(key, record);
    }
    return record;
  }

  /**
   * Brings rule identity sets up to date: fresh policies against every
   * identity, the others against the identities that came and went.
   */
  #commitPeers(fresh: Set<string>, added: IdentityRecord[], removed: number[], dirtyEndpoints: Set<string>): void {
    const everyIdentity = [...this.#identitiesById.values()];
    for (const [key, record] of this.#policyRecords) {
      const namespace = record.parsed.namespace;
      if (fresh.has(key)) {
        for (const rule of record.rules) {
          for (const identity of everyIdentity) {
            if (ruleTargets(rule.parsed, namespace, identity)) rule.identities.add(identity.id);
          }
        }
        continue;
      }
      if (added.length === 0 && removed.length === 0) continue;
      let changed = false;
      for (const rule of record.rules) {
        for (const id of removed) changed = rule.identities.delete(id) || changed;
        for (const identity of added) {
          if (!ruleTargets(rule.parsed, namespace, identity)) continue;
          rule.identities.add(identity.id);
          changed = true;
        }
      }
      if (changed) for (const pod of record.selected) dirtyEndpoints.add(pod);
    }
  }

  /** Recomputes dirty endpoints: flags, identity, entries, slot; then drops slots nobody uses. */
  #commitEndpoints(dirty: Set<string>, diff: StateDiff): void {
    const contents = new Map<string, SlotContent>();
    const templates = new Map<string, GroupTemplate>();
    const released: SlotRecord[] = [];
    for (const key of dirty) {
      const pod = this.#pods.get(key);
      const old = this.#endpointRecords.get(key);
      if (!pod || (this.#nodeName !== undefined && pod.nodeName !== this.#nodeName)) {
        if (!old) continue;
        this.#endpointRecords.delete(key);
        this.#podByEndpointId.delete(old.state.endpointId);
        diff.endpointRemovals.push(key);
        released.push(this.#releaseSlot(old.contentKey));
        continue;
      }
      const applying = [...(this.#policiesByNamespace.get(pod.namespace) ?? [])]
        .sort()
        .map((policyKey) => this.#policyRecords.get(policyKey) as PolicyRecord)
        .filter((record) => record.selected.has(key));
      let flags = 0;
      for (const { parsed } of applying) {
        for (const type of parsed.types) {
          flags |= type === "Ingress" ? EP_AUDIT_ISOLATED_INGRESS : EP_AUDIT_ISOLATED_EGRESS;
          if (parsed.mode === "Enforce") flags |= type === "Ingress" ? EP_ISOLATED_INGRESS : EP_ISOLATED_EGRESS;
        }
      }
      // Entries depend on the pod only through ingress named ports.
      const signature = JSON.stringify([applying.map((r) => r.parsed.key), pod.namedPorts]);
      let content = contents.get(signature);
      if (!content) {
        content = this.#slotContent(applying, pod, templates);
        contents.set(signature, content);
      }
      const slot = this.#acquireSlot(content, diff);
      if (old) released.push(this.#releaseSlot(old.contentKey));
      const firstIp = (this.#podRecords.get(key) as PodRecord).ipTexts[0];
      const binding = firstIp === undefined ? undefined : this.#bindings.get(firstIp);
      const state: EndpointState = {
        endpointId: old?.state.endpointId ?? this.#nextEndpointId++,
        identity: binding?.owner === key ? binding.record.id : 0,
        slot: slot.slot,
        flags,
      };
      this.#endpointRecords.set(key, { state, contentKey: content.key });
      this.#podByEndpointId.set(state.endpointId, key);
      if (old && sameEndpointState(old.state, state)) continue;
      diff.endpointUpserts.push([key, state]);
    }
    // Removed last, so a slot released by one endpoint and taken by another survives.
    for (const slot of released) {
      if (slot.users > 0 || !this.#slots.delete(slot.contentKey)) continue;
      this.#policyEntries -= slot.entries.length;
      for (const entry of slot.entries) diff.policyRemovals.push(entry.key);
    }
  }

  #acquireSlot(content: SlotContent, diff: StateDiff): SlotRecord {
    let slot = this.#slots.get(content.key);
    if (!slot) {
      const number = this.#nextSlot++;
      slot = {
        contentKey: content.key,
        slot: number,
        users: 0,
        entries: [],
      };
      this.#slots.set(content.key, slot);
      for (const { identity, direction, template } of content.groups) {
        for (const { protocol, port, portPrefixLen, value } of template.entries) {
          const entry: PolicyEntry = { key: { slot: number, identity, direction, protocol, port, portPrefixLen }, value };
          slot.entries.push(entry);
          diff.policyUpserts.push(entry);
        }
      }
      this.#policyEntries += slot.entries.length;
    }
    slot.users++;
    return slot;
  }

  #releaseSlot(contentKey: string): SlotRecord {
    const slot = this.#slots.get(contentKey) as SlotRecord;
    slot.users--;
    return slot;
  }

  /**
   * The policy entries (without slot) of an endpoint the given policies
   * apply to. `templates` memoizes group results within one commit (rule ids
   * stand for their rule's action, mode and order only that long).
   */
  #slotContent(applying: PolicyRecord[], pod: PodInfo, templates: Map<string, GroupTemplate>): SlotContent {
    type Group = { identity: number; direction: Direction; items: RuleItem[]; signature: string };
    const groups: [Map<number, Group>, Map<number, Group>] = [new Map(), new Map()];
    const add = (identity: number, direction: Direction, part: RuleItems): void => {
      if (part.items.length === 0) return;
      const group = groups[direction].get(identity);
      if (!group) {
        groups[direction].set(identity, { identity, direction, items: [...part.items], signature: part.signature });
        return;
      }
      group.items.push(...part.items);
      group.signature += part.signature;
    };
    for (const record of applying) {
      for (const rule of record.rules) {
        const { ports, peers } = rule.parsed;
        if (rule.parsed.direction === "Ingress") {
          // The destination is this pod: named ports resolve here, once.
          const part = ruleItems(
            rule,
            ports ? [...ports.numeric, ...ports.named.flatMap((ref) => resolveNamedPort(ref, pod.namedPorts))] : [ANY_PORT_RANGE],
          );
          for (const identity of peers ? rule.identities : [IDENTITY_ANY]) add(identity, DIRECTION_INGRESS, part);
          continue;
        }
        // Egress: the destination is the remote, so named ports resolve per identity.
        const fixed = ruleItems(rule, ports ? ports.numeric : [ANY_PORT_RANGE]);
        if (!peers) add(IDENTITY_ANY, DIRECTION_EGRESS, fixed);
        for (const id of rule.identities) {
          const identity = this.#identitiesById.get(id) as IdentityRecord;
          const named = (ports?.named ?? []).flatMap((ref) => resolveNamedPort(ref, identity.namedPorts));
          if (peers && named.length === 0) add(id, DIRECTION_EGRESS, fixed);
          else add(id, DIRECTION_EGRESS, ruleItems(rule, peers ? [...fixed.items.map((i) => i.port), ...named] : named));
        }
      }
    }
    const out: SlotContent["groups"] = [];
    for (const byIdentity of groups) {
      for (const { identity, direction, items, signature } of byIdentity.values()) {
        let template = templates.get(signature);
        if (!template) {
          template = this.#groupTemplate(items);
          templates.set(signature, template);
        }
        out.push({ identity, direction, template });
      }
    }
    out.sort((a, b) => a.direction - b.direction || a.identity - b.identity);
    return { key: out.map((g) => `${g.direction}/${g.identity}{${g.template.text}}`).join(""), groups: out };
  }

  /** Entries for one group's items: a key per item prefix, valued by every item covering it. */
  #groupTemplate(items: RuleItem[]): GroupTemplate {
    const keys = new Map<string, { protocol: number; lo: number; hi: number; prefixLen: number }>();
    for (const { port: item } of items) {
      if (item.protocol === 0) {
        keys.set("0/0/0", { protocol: 0, lo: item.lo, hi: item.hi, prefixLen: 0 });
        continue;
      }
      for (const prefix of item.prefixes) {
        const [lo, hi] = portPrefixRange(prefix);
        keys.set(`${item.protocol}/${prefix.port}/${prefix.prefixLen}`, { protocol: item.protocol, lo, hi, prefixLen: prefix.prefixLen });
      }
    }
    const values = new Map<string, PolicyValue>();
    const entries: { text: string; entry: GroupTemplate["entries"][number] }[] = [];
    for (const key of keys.values()) {
      const covering = items
        .filter(({ port: p }) => p.protocol === 0 || (p.protocol === key.protocol && p.lo <= key.lo && key.hi <= p.hi))
        .map((item) => item.rule);
      const [verdict, ruleId] = verdictOf(covering, true);
      const [auditVerdict, auditRuleId] = verdictOf(covering, false);
      const valueText = `${verdict},${auditVerdict},${ruleId},${auditRuleId}`;
      let value = values.get(valueText);
      if (!value) {
        value = { verdict, auditVerdict, ruleId, auditRuleId };
        values.set(valueText, value);
      }
      const port = key.protocol === 0 ? 0 : key.lo;
      const keyTail = `${key.protocol}/${port}/${key.prefixLen}`;
      entries.push({
        text: `${keyTail}=${valueText}`,
        entry: { protocol: key.protocol, port, portPrefixLen: key.prefixLen, value },
      });
    }
    entries.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
    return { text: entries.map((e) => e.text).join(";"), entries: entries.map((e) => e.entry) };
  }

  #source(text: string, cidr: Cidr): IpcacheSource {
    let source = this.#sources.get(text);
    if (!source) {
      source = { cidr, host: false, pods: new Set(), prefix: false };
      this.#sources.set(text, source);
    }
    return source;
  }

  #indexAdd(index: Map<string, Set<string>>, key: string, value: string): void {
    let set = index.get(key);
    if (!set) {
      set = new Set();
      index.set(key, set);
    }
    set.add(value);
  }
}

/**
 * Compiles a whole world at once: a fresh compiler fed every object, then
 * committed. The compiler is returned so later changes can be incremental.
 *
 * @example
 * ```ts
 * const { compiler, state } = compileWorld(world);
 * lookupVerdict(state, { endpoint: "x/a", direction: DIRECTION_INGRESS, remoteIp: "10.0.0.2", protocol: "TCP", port: 80 });
 * ```
 */
export function compileWorld(
  world: World,
  options: PolicyCompilerOptions = {},
): { compiler: PolicyCompiler; state: DesiredState } {
  const compiler = new PolicyCompiler(options);
  for (const ns of world.namespaces.values()) compiler.upsertNamespace(ns);
  for (const pod of world.pods.values()) compiler.upsertPod(pod);
  for (const policy of world.policies) compiler.upsertPolicy(policy);
  compiler.setHostIPs(world.hostIPs);
  compiler.commit();
  return { compiler, state: compiler.state() };
}
