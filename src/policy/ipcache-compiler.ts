/**
 * The ipcache half of compilation: which identity every address and policy
 * prefix has. It takes namespaces, pods, the node's addresses and the
 * ipBlock prefixes of policies, works out each address's attributes (its
 * pod, labels, named ports and CIDR class) and identity key, numbers keys
 * through an {@link IdentityAllocator}, and commits the ipcache changes
 * incrementally. The operator runs it alone to allocate the cluster's
 * identities; the {@link PolicyCompiler} runs it under its rules and
 * endpoints.
 *
 * - Every distinct CIDR of a policy's ipBlock (cidr or except) is an
 *   ipcache prefix. The class of an address is the longest such prefix
 *   containing it; an ipBlock matches an address iff it contains the class
 *   and no except does (prefixes containing one point are nested).
 * - An address claimed twice gets one entry: a host IP beats pods, a pod IP
 *   beats a policy prefix of the same text, and among pods the smallest key
 *   wins.
 * - A key the allocator has no number for yet is pending: its address is
 *   left out of the ipcache, or keeps the identity the same owner had (see
 *   {@link IpcacheCompiler.identitiesChanged}).
 *
 * @module
 */
import type { AnyPolicy } from "./api-types.ts";
import { IDENTITY_HOST, IDENTITY_WORLD, ipcacheKeyOf, IPCACHE_HOST } from "./desired-state.ts";
import type { IdentityInfo, IpcacheEntry, IpcacheKey } from "./desired-state.ts";
import { LocalIdentityAllocator } from "./identity.ts";
import type { IdentityAllocator } from "./identity.ts";
import { canonicalNamedPorts, cidrIdentityKey, describeIdentity, hostIdentity, IdentityKeyError, identityKey, identityKeyFields, NO_LABELS, NO_PORTS, podIdentity, sameLabels } from "./identity-key.ts";
import type { IdentityAttributes } from "./identity-key.ts";
import { CidrMap, formatCidr, hostCidr, IpParseError, networkAddress, parseCidr, parseIp } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import type { Labels } from "./selector.ts";
import { normalizePolicy, policyObjectKey } from "./normalized-policy.ts";
import type { PolicyKind, PolicyPrefixes } from "./normalized-policy.ts";
import { keysOf, withKey, withoutKey } from "./key-set.ts";
import type { KeySet } from "./key-set.ts";
import { indexAdd } from "./set-index.ts";
import { PolicyError } from "./validate.ts";
import { podKey } from "./world.ts";
import type { NamedPort, NamespaceInfo, PodInfo } from "./world.ts";

/** An identity in use: its number, key and what it stands for. */
export interface Identity extends Readonly<IdentityAttributes> {
  readonly id: number;
  readonly key: string;
}

/** What one {@link IpcacheCompiler.commit} changed. */
export interface IpcacheCommit {
  upserts: IpcacheEntry[];
  removals: IpcacheKey[];
  /** Pods added, changed or removed since the last commit, by key, with their namespace. */
  pods: Map<string, string>;
  /** Pods whose address now has another identity or owner: their endpoint's own identity may have changed. */
  rebound: Set<string>;
  /** Identities that came into use. */
  added: Identity[];
  /** Identities that went out of use. */
  removed: Identity[];
  /** Ipcache keys whose entry was recomputed. */
  keys: number;
}

interface IdentityRecord extends IdentityAttributes {
  /** 0 until allocated at the end of a commit. */
  id: number;
  key: string;
  /** Ipcache entries using this identity. */
  users: number;
}

/**
 * The identity of a policy prefix's own entry, held by its source instead of
 * in the records by key: one per prefix (100k of them at scale), so it keeps
 * only what differs between them, its source giving the prefix; the
 * attributes every CIDR identity shares come from the prototype, and the key
 * is made when read, the allocator numbering the prefix itself
 * ({@link IdentityAllocator.allocatePrefix}). That saves a map entry, five
 * fields and the key's text per prefix (~115 bytes).
 */
class CidrIdentityRecord implements IdentityRecord {
  id = 0;
  users = 0;
  readonly source: IpcacheSource;

  constructor(source: IpcacheSource) {
    this.source = source;
  }

  get key(): string {
    return cidrIdentityKey(formatCidr(this.source.cidr));
  }

  get kind(): "cidr" {
    return "cidr";
  }

  get namespace(): string {
    return "";
  }

  get namespaceLabels(): Labels {
    return NO_LABELS;
  }

  get podLabels(): Labels {
    return NO_LABELS;
  }

  get namedPorts(): readonly NamedPort[] {
    return NO_PORTS;
  }

  get cls(): Cidr {
    return this.source.cidr;
  }
}

/**
 * Who claims an ipcache key (host and pods for an address, policies for a
 * prefix) and the entry it got, as of the last commit: `record`, `flags` and
 * `owner` as in {@link IpcacheBinding}, `record` undefined while the key has
 * no entry (a key without claims has none, so its source goes at the commit's
 * end). One record per key: a second map of entries by key, or an object per
 * entry, would cost ~35 bytes more per prefix each.
 */
interface IpcacheSource {
  /** The address or prefix; its kernel key is made when an entry is written (a stored key costs ~370 bytes per prefix). */
  cidr: Cidr;
  host: boolean;
  /** Pod keys claiming the address (most sources are policy prefixes, claimed by none). */
  pods: KeySet;
  prefix: boolean;
  /** The prefix's own identity while it is wanted (see {@link CidrIdentityRecord}); pods' and hosts' are by key. */
  cidrRecord: CidrIdentityRecord | undefined;
  record: IdentityRecord | undefined;
  flags: number;
  owner: string;
}

/** The entry a source's key has, if any: the source itself, read as a binding. */
function bindingOf(source: IpcacheSource | undefined): IpcacheBinding | undefined {
  return source?.record === undefined ? undefined : (source as IpcacheSource & IpcacheBinding);
}

/** The ipcache entry of key `cidr` bound as `binding`. */
function entryOf(cidr: Cidr, binding: IpcacheBinding): IpcacheEntry {
  return { key: ipcacheKeyOf(cidr), value: { identity: binding.record.id, flags: binding.flags } };
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

/** How every CIDR identity key starts (see {@link cidrIdentityKey}): only such keys can name a prefix's record. */
const CIDR_KEY_START = '["cidr",';

/** The key of host addresses outside every policy prefix: they get the reserved HOST identity, never an allocated one. */
const RESERVED_HOST_KEY = identityKey(hostIdentity(undefined));

const RESERVED_IDENTITIES: IdentityInfo[] = [
  { id: IDENTITY_HOST, description: "host: an address of this node outside every policy prefix" },
  { id: IDENTITY_WORLD, description: "world: an address outside every policy prefix and not a pod's" },
];

/**
 * The incremental ipcache compiler. Feed it objects as they change, then
 * `commit()` to get the ipcache changes and the identities that came and went.
 *
 * @example
 * ```ts
 * const ipcache = new IpcacheCompiler({ identities: table });
 * ipcache.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
 * ipcache.upsertPod({ namespace: "x", name: "a", labels: { pod: "a" }, ips: ["10.0.0.1"], namedPorts: [] });
 * ipcache.commit().upserts; // [{ key: { family: 4, address: Uint8Array [10, 0, 0, 1], prefixLen: 32 }, value: { identity: 256, flags: 0 } }]
 * ```
 */
export class IpcacheCompiler {
  readonly #allocator: IdentityAllocator;
  readonly #prefixEntries: boolean;

  // Inputs, as of the latest mutation.
  readonly #namespaces = new Map<string, NamespaceInfo>();
  readonly #pods = new Map<string, PodInfo>();
  readonly #podIps = new Map<string, string[]>();
  readonly #policyPrefixes = new Map<string, PolicyPrefixes>();
  #hostIpTexts: string[] = [];

  // What changed since the last commit.
  readonly #dirtyNamespaces = new Set<string>();
  readonly #dirtyPods = new Set<string>();
  readonly #dirtyPolicies = new Set<string>();
  #dirtyHosts = false;
  /** Addresses whose identity key may have got a number: see {@link IpcacheCompiler.identitiesChanged}. */
  readonly #retryIpcache = new Set<string>();

  // Derived state, as of the last commit.
  readonly #podRecords = new Map<string, PodRecord>();
  readonly #podsByNamespace = new Map<string, Set<string>>();
  readonly #committedPolicyPrefixes = new Map<string, PolicyPrefixes>();
  #committedHostTexts: string[] = [];
  /**
   * How many policies claim each prefix: a count by network, not an object by text (~30 bytes less per prefix).
   * The prefixes it holds class addresses ({@link CidrMap.longestPrefix}).
   */
  readonly #prefixUsers = new CidrMap<number>();
  readonly #sources = new Map<string, IpcacheSource>();
  readonly #identitiesByKey = new Map<string, IdentityRecord>();
  readonly #identitiesById = new Map<number, IdentityRecord>();
  /** Addresses whose wanted identity is pending at the allocator, and that key. */
  readonly #pendingIpcache = new Map<string, string>();

  /**
   * Creates an empty compiler; identities come from a {@link LocalIdentityAllocator} unless `identities` is given.
   * `prefixEntries: false` leaves policy prefixes out of the ipcache (they still class addresses): for the
   * operator, which numbers only what every node must agree on, and each node numbers prefixes itself.
   */
  constructor(options: { identities?: IdentityAllocator; prefixEntries?: boolean } = {}) {
    this.#allocator = options.identities ?? new LocalIdentityAllocator();
    this.#prefixEntries = options.prefixEntries ?? true;
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
   * Adds or replaces a policy's ipBlock prefixes (the policy valid as
   * validation leaves it): they become ipcache prefixes and CIDR classes.
   *
   * @throws {PolicyError} naming the field of a policy that skipped validation and cannot be converted; nothing changes then.
   */
  upsertPolicy(policy: AnyPolicy): void {
    const { key, prefixes } = normalizePolicy(policy);
    this.setPolicyPrefixes(key, prefixes);
  }

  /** Removes a policy's prefixes. */
  deletePolicy(kind: PolicyKind, namespace: string, name: string): void {
    this.setPolicyPrefixes(policyObjectKey(kind, namespace, name), undefined);
  }

  /**
   * Sets the prefixes (canonical texts, each once) of the policy keyed `policyKey`; none removes them. A policy
   * without prefixes is not held at all: most have none, and an entry each in two maps costs ~90 bytes.
   */
  setPolicyPrefixes(policyKey: string, prefixes: PolicyPrefixes | undefined): void {
    const held = prefixes !== undefined && prefixes.texts.length > 0;
    if (!held && !this.#policyPrefixes.delete(policyKey)) return;
    if (held) this.#policyPrefixes.set(policyKey, prefixes);
    this.#dirtyPolicies.add(policyKey);
  }

  /**
   * Sets the node's addresses (validated, as `buildWorld` and the agent's
   * conversion leave them): they carry the HOST flag, so ingress from them is always allowed.
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
      const record = this.#heldRecord(key);
      if (record === undefined || record.id === 0 || record.key === RESERVED_HOST_KEY) continue;
      this.#forget(record);
      renumbered.add(record);
    }
    if (renumbered.size === 0) return;
    for (const [text, { record }] of this.#sources) if (record && renumbered.has(record)) this.#retryIpcache.add(text);
  }

  /**
   * Identity keys that addresses need and the allocator has no number for
   * yet, sorted. Such an address is left out of the ipcache (or keeps the
   * identity its owner had), so no rule meant for someone else can match it.
   */
  pendingIdentityKeys(): string[] {
    return [...new Set(this.#pendingIpcache.values())].sort();
  }

  /** Whether nothing changed since the last commit. */
  get idle(): boolean {
    return this.#dirtyPolicies.size + this.#dirtyPods.size + this.#dirtyNamespaces.size + this.#retryIpcache.size === 0 && !this.#dirtyHosts;
  }

  /** Everything changed since the last commit; the internal state advances. */
  commit(): IpcacheCommit {
    const dirty = new Set<string>(this.#retryIpcache);
    this.#retryIpcache.clear();
    this.#commitPolicyPrefixes(dirty);
    const pods = this.#commitPods(dirty);
    this.#commitHosts(dirty);
    return { ...this.#commitIpcache(dirty), pods, keys: dirty.size };
  }

  /** The latest input of a pod. */
  pod(key: string): PodInfo | undefined {
    return this.#pods.get(key);
  }

  /** Keys of the pods of a namespace, as of the last commit. */
  podsOf(namespace: string): ReadonlySet<string> {
    return this.#podsByNamespace.get(namespace) ?? new Set();
  }

  /** The identity numbered `id`, in use after the last commit. */
  identity(id: number): Identity | undefined {
    return this.#identitiesById.get(id);
  }

  /** Every identity in use after the last commit. */
  identities(): IterableIterator<Identity> {
    return this.#identitiesById.values();
  }

  /** The identity of a pod's own (first) address when the pod owns that address; 0 otherwise. */
  podIdentity(key: string): number {
    const firstIp = this.#podRecords.get(key)?.ipTexts[0];
    const binding = bindingOf(firstIp === undefined ? undefined : this.#sources.get(firstIp));
    return binding?.owner === key ? binding.record.id : 0;
  }

  /** The ipcache after the last commit, by canonical CIDR text: a snapshot. */
  entries(): Map<string, IpcacheEntry> {
    const entries = new Map<string, IpcacheEntry>();
    for (const [text, source] of this.#sources) {
      const binding = bindingOf(source);
      if (binding) entries.set(text, entryOf(source.cidr, binding));
    }
    return entries;
  }

  /**
   * What the identities in use and the reserved ones stand for, by number: a
   * snapshot built on each call, since descriptions kept for 100k CIDR
   * identities would hold about 20 MB that only a full read wants.
   */
  identityInfo(): Map<number, IdentityInfo> {
    const info = new Map<number, IdentityInfo>(RESERVED_IDENTITIES.map((reserved) => [reserved.id, reserved]));
    // The host key's record is numbered IDENTITY_HOST, one of the reserved identities.
    for (const record of this.#identitiesById.values()) if (record.id !== IDENTITY_HOST) info.set(record.id, { id: record.id, description: describeIdentity(record) });
    return info;
  }

  /** How many identities {@link IpcacheCompiler.identityInfo} describes, without describing them. */
  get identityCount(): number {
    // The host key's record is numbered IDENTITY_HOST, one of the reserved identities.
    return RESERVED_IDENTITIES.length + this.#identitiesById.size - (this.#identitiesById.has(IDENTITY_HOST) ? 1 : 0);
  }

  /** Moves the prefix claims of changed policies; marks the prefixes and the addresses whose class may change dirty. */
  #commitPolicyPrefixes(dirty: Set<string>): void {
    /** The prefixes claimed or released, and whether they were claimed before. */
    const touched = new Map<string, { cidr: Cidr; was: boolean }>();
    const use = (prefixes: PolicyPrefixes | undefined, delta: 1 | -1): void => {
      if (prefixes === undefined) return;
      for (let i = 0; i < prefixes.texts.length; i++) {
        const text = prefixes.texts[i] as string;
        const cidr = prefixes.cidrs[i] as Cidr;
        const before = this.#prefixUsers.get(cidr) ?? 0;
        if (!touched.has(text)) touched.set(text, { cidr, was: before > 0 });
        if (before + delta === 0) this.#prefixUsers.delete(cidr);
        else this.#prefixUsers.set(cidr, before + delta);
      }
    };
    // In key order: a fresh node numbers the prefixes' identities alike whatever order the policies arrived in.
    for (const key of [...this.#dirtyPolicies].sort()) {
      use(this.#committedPolicyPrefixes.get(key), -1);
      const prefixes = this.#policyPrefixes.get(key);
      use(prefixes, 1);
      if (prefixes === undefined) this.#committedPolicyPrefixes.delete(key);
      else this.#committedPolicyPrefixes.set(key, prefixes);
    }
    this.#dirtyPolicies.clear();

    const changed = new CidrMap<Cidr>();
    for (const [text, { cidr, was }] of touched) {
      const used = this.#prefixUsers.get(cidr) !== undefined;
      if (used === was) continue;
      changed.set(cidr, cidr);
      if (!this.#prefixEntries) continue;
      this.#source(text, cidr).prefix = used;
      dirty.add(text);
    }
    // Only addresses inside an added or removed prefix can change class.
    if (!changed.empty) {
      for (const [text, source] of this.#sources) {
        if (!source.host && source.pods === undefined) continue;
        if (changed.longestPrefix(networkAddress(source.cidr))) dirty.add(text);
      }
    }
  }

  /** Moves changed pods' address claims; returns the pods that changed, with their namespace. */
  #commitPods(dirty: Set<string>): Map<string, string> {
    const changed = new Map<string, string>();
    for (const key of this.#dirtyPods) {
      const pod = this.#pods.get(key);
      const old = this.#podRecords.get(key);
      if (!pod && !old) continue; // added and deleted between two commits
      const namespace = pod?.namespace ?? (old as PodRecord).namespace;
      changed.set(key, namespace);
      for (const text of old?.ipTexts ?? []) {
        const source = this.#sources.get(text) as IpcacheSource;
        source.pods = withoutKey(source.pods, key);
        dirty.add(text);
      }
      if (pod) {
        const ipTexts = this.#podIps.get(key) as string[];
        for (const text of ipTexts) {
          const source = this.#source(text, parseCidr(text));
          source.pods = withKey(source.pods, key);
          dirty.add(text);
        }
        this.#podRecords.set(key, { namespace, ipTexts });
        indexAdd(this.#podsByNamespace, namespace, key);
      } else {
        this.#podRecords.delete(key);
        this.#podsByNamespace.get(namespace)?.delete(key);
      }
    }
    this.#dirtyPods.clear();
    // Namespace labels are part of every pod identity of the namespace.
    for (const namespace of this.#dirtyNamespaces) {
      for (const key of this.#podsByNamespace.get(namespace) ?? []) {
        for (const text of (this.#podRecords.get(key) as PodRecord).ipTexts) dirty.add(text);
      }
    }
    this.#dirtyNamespaces.clear();
    return changed;
  }

  #commitHosts(dirty: Set<string>): void {
    if (!this.#dirtyHosts) return;
    for (const text of this.#committedHostTexts) {
      (this.#sources.get(text) as IpcacheSource).host = false;
      dirty.add(text);
    }
    for (const text of this.#hostIpTexts) {
      this.#source(text, parseCidr(text)).host = true;
      dirty.add(text);
    }
    this.#committedHostTexts = this.#hostIpTexts;
    this.#dirtyHosts = false;
  }

  /**
   * Recomputes the ipcache entries of dirty keys, allocating and releasing
   * identities as their use starts and ends.
   *
   * An address whose identity is pending at the allocator keeps its entry if
   * the same owner had one (its previous labels, as before the change was
   * seen); otherwise it has none (a host address gets the reserved host
   * identity), and it is retried by {@link IpcacheCompiler.identitiesChanged}.
   */
  #commitIpcache(dirty: Set<string>): Omit<IpcacheCommit, "pods" | "keys"> {
    const pending = new Map<string, IpcacheBinding | undefined>();
    const touched = new Set<IdentityRecord>();
    const added: IdentityRecord[] = [];
    const unanswered = new Set<IdentityRecord>();
    const identify = (record: IdentityRecord): boolean => {
      if (record.id !== 0) return true;
      if (unanswered.has(record)) return false;
      const id = record instanceof CidrIdentityRecord ? this.#allocator.allocatePrefix(record.source.cidr) : record.key === RESERVED_HOST_KEY ? IDENTITY_HOST : this.#allocator.allocate(record.key);
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
      const current = bindingOf(this.#sources.get(text));
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
    const removed: IdentityRecord[] = [];
    for (const record of touched) {
      if (record.users > 0) continue;
      this.#forget(record);
      if (record.id === 0) continue;
      this.#identitiesById.delete(record.id);
      removed.push(record);
      if (record instanceof CidrIdentityRecord) this.#allocator.releasePrefix(record.source.cidr, record.id);
      else if (record.key !== RESERVED_HOST_KEY) this.#allocator.release(record.key, record.id);
    }
    for (const record of added) this.#identitiesById.set(record.id, record);

    const upserts: IpcacheEntry[] = [];
    const removals: IpcacheKey[] = [];
    const rebound = new Set<string>();
    for (const [text, wanted] of pending) {
      // A key with an entry wanted or held has a source: its claims or the binding keep it.
      const source = this.#sources.get(text) as IpcacheSource;
      const current = source.record && { record: source.record, flags: source.flags, owner: source.owner };
      source.record = wanted?.record;
      source.flags = wanted?.flags ?? 0;
      source.owner = wanted?.owner ?? "";
      if (wanted) {
        if (!current || current.record.id !== wanted.record.id || current.flags !== wanted.flags) upserts.push(entryOf(source.cidr, wanted));
      } else {
        removals.push(ipcacheKeyOf(source.cidr));
      }
      if (current?.owner !== wanted?.owner || current?.record !== wanted?.record) {
        for (const pod of keysOf(source.pods)) rebound.add(pod);
      }
    }
    for (const text of dirty) {
      const source = this.#sources.get(text);
      if (source && !source.host && !source.prefix && source.pods === undefined) this.#sources.delete(text);
    }
    return { upserts, removals, rebound, added, removed };
  }

  /** What the ipcache entry of a key should be now: the host beats pods (smallest key first) beats a prefix. */
  #wantedBinding(text: string): IpcacheBinding | undefined {
    const source = this.#sources.get(text);
    if (!source) return undefined;
    if (source.host || source.pods !== undefined) {
      const cls = this.#prefixUsers.longestPrefix(networkAddress(source.cidr));
      if (source.host) {
        return { record: this.#identityRecord(hostIdentity(cls)), flags: IPCACHE_HOST, owner: "host" };
      }
      const owner = [...keysOf(source.pods)].sort()[0] as string;
      const pod = this.#pods.get(owner) as PodInfo;
      const namespaceLabels = this.#namespaces.get(pod.namespace)?.labels ?? {};
      const record = this.#identityRecord(podIdentity(pod.namespace, namespaceLabels, pod.labels, pod.namedPorts, cls));
      return { record, flags: 0, owner };
    }
    if (source.prefix) {
      source.cidrRecord ??= new CidrIdentityRecord(source);
      return { record: source.cidrRecord, flags: 0, owner: "prefix" };
    }
    return undefined;
  }

  /** The record numbering `key` now, if any: a prefix's is held by its source, the others by key. */
  #heldRecord(key: string): IdentityRecord | undefined {
    if (!key.startsWith(CIDR_KEY_START)) return this.#identitiesByKey.get(key);
    let prefix: string | undefined;
    try {
      prefix = identityKeyFields(key).cidr;
    } catch (cause) {
      // A key from the cluster's table that this compiler cannot have made: it numbers nothing here.
      if (cause instanceof IdentityKeyError) return undefined;
      throw cause;
    }
    const record = prefix === undefined ? undefined : this.#sources.get(prefix)?.cidrRecord;
    return record?.key === key ? record : undefined;
  }

  /** Drops a record from where the next commit would find it, so a later use makes a fresh one (and numbers it anew). */
  #forget(record: IdentityRecord): void {
    if (record instanceof CidrIdentityRecord) {
      if (record.source.cidrRecord === record) record.source.cidrRecord = undefined;
    } else if (this.#identitiesByKey.get(record.key) === record) {
      this.#identitiesByKey.delete(record.key);
    }
  }

  #identityRecord(attributes: IdentityAttributes): IdentityRecord {
    const key = identityKey(attributes);
    let record = this.#identitiesByKey.get(key);
    if (!record) {
      // Every property spelled out: a spread leaves three of them in a separate property array, ~40 bytes more per identity.
      const { kind, namespace, namespaceLabels, podLabels, namedPorts, cls } = attributes;
      record = { kind, namespace, namespaceLabels, podLabels, namedPorts, cls, id: 0, key, users: 0 };
      this.#identitiesByKey.set(key, record);
    }
    return record;
  }

  #source(text: string, cidr: Cidr): IpcacheSource {
    let source = this.#sources.get(text);
    if (!source) {
      source = { cidr, host: false, pods: undefined, prefix: false, cidrRecord: undefined, record: undefined, flags: 0, owner: "" };
      this.#sources.set(text, source);
    }
    return source;
  }
}
