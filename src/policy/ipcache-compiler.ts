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
import { canonicalNamedPorts, cidrIdentityKey, describeIdentity, hostIdentity, IdentityKeyError, identityKey, identityKeyFields, inCanonicalOrder, NO_LABELS, NO_PORTS, podIdentity, sameLabels } from "./identity-key.ts";
import type { IdentityAttributes } from "./identity-key.ts";
import { CidrMap, formatCidr, hostCidr, Int32Map, IpParseError, networkAddress, parseCidr, parseIp } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import type { Labels } from "./selector.ts";
import { normalizePolicy, policyObjectKey } from "./normalized-policy.ts";
import type { PolicyKind, PolicyPrefixes } from "./normalized-policy.ts";
import { DenseNumbers } from "./dense-numbers.ts";
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
 * The identity of a policy prefix's own entry, made when a commit or a reader
 * needs it: the compiler holds a prefix's (100k of them at scale) as its
 * number in typed arrays by the prefix's dense number (see
 * {@link IpcacheCompiler}), not as an object, so two of these may stand for
 * one identity: readers compare identities by number. The attributes every
 * CIDR identity shares come from the prototype, and the key is made when
 * read, the allocator numbering the prefix itself
 * ({@link IdentityAllocator.allocatePrefix}).
 */
class CidrIdentityRecord implements IdentityRecord {
  id: number;
  users: number;
  /** The prefix's dense number in its compiler. */
  readonly prefix: number;
  readonly cls: Cidr;

  constructor(prefix: number, cls: Cidr, id: number, users: number) {
    this.prefix = prefix;
    this.cls = cls;
    this.id = id;
    this.users = users;
  }

  get key(): string {
    return cidrIdentityKey(formatCidr(this.cls));
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
}

/**
 * Who claims an address (the host, pods) and the entry it got, as of the
 * last commit: `record`, `flags` and `owner` as in {@link IpcacheBinding},
 * `record` undefined while the key has no entry or a policy prefix of the
 * same text holds it (a key without claims has none, so its source goes at
 * the commit's end). A policy prefix has none: see the prefixes' arrays in
 * {@link IpcacheCompiler}.
 */
interface IpcacheSource {
  /** The address; its kernel key is made when an entry is written (a stored key costs ~370 bytes per key). */
  cidr: Cidr;
  host: boolean;
  /** Pod keys claiming the address. */
  pods: KeySet;
  record: IdentityRecord | undefined;
  flags: number;
  owner: string;
}

/** The entry a source's key has, if any: the source itself, read as a binding. */
function bindingOf(source: IpcacheSource | undefined): IpcacheBinding | undefined {
  return source?.record === undefined ? undefined : (source as IpcacheSource & IpcacheBinding);
}

/** A prefix's flags ({@link IpcacheCompiler}'s `#prefixFlags`): policies claim it. */
const PREFIX_USED = 1;
/** A prefix's flags: its entry's identity is its own identity now, not one {@link IpcacheCompiler.identitiesChanged} renumbered. */
const PREFIX_FRESH = 2;

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
  /** The addresses the host or pods claim, by canonical text. */
  readonly #sources = new Map<string, IpcacheSource>();
  /**
   * The policy prefixes whose entry is wanted or held, by canonical text: each a dense number, reused after its
   * prefix goes ({@link DenseNumbers}), that indexes the arrays below. An object per prefix (a source, ~83 bytes,
   * its identity record, 48, and that record's entry in a map by number, ~37) cost some 17 MB at 100k prefixes.
   */
  readonly #prefixNumbers = new DenseNumbers<string>();
  /** Each number's prefix; undefined while the number is free. */
  readonly #prefixCidrs: (Cidr | undefined)[] = [];
  /**
   * The identity of each number's entry while its prefix holds its key (0 while none, or a host or pod does): as
   * allocators give them, so a node-local one may be negative ({@link identityInMemory}) and another up to 2^32 - 1.
   */
  #prefixIds = new Float64Array(64);
  /** {@link PREFIX_USED} and {@link PREFIX_FRESH} by number. */
  #prefixFlags = new Uint8Array(64);
  /** The prefix numbers of the prefixes' identities in use, by identity (as a signed 32-bit integer). */
  readonly #prefixesById = new Int32Map<number>();
  /** Host and pod identities by key and by number: a prefix's is in the arrays above. */
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
   * Adds or replaces a pod (its IPs validated, as `buildWorld` leaves them). The pod is kept as given, not copied,
   * when its named ports are in {@link canonicalNamedPorts} order: the agent's pod cache holds the same object
   * (10k pods: 5.2 MB of copies). Replace a pod with a new object rather than change one given in place.
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
    this.#pods.set(key, inCanonicalOrder(pod.namedPorts) ? pod : { ...pod, namedPorts: canonicalNamedPorts(pod.namedPorts) });
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
      if (key.startsWith(CIDR_KEY_START)) {
        const prefix = this.#heldPrefix(key);
        if (prefix === undefined) continue;
        // A fresh record at the next commit: its entry's identity is no longer the prefix's own.
        this.#prefixFlags[prefix.number] = (this.#prefixFlags[prefix.number] as number) & ~PREFIX_FRESH;
        this.#retryIpcache.add(prefix.text);
        continue;
      }
      const record = this.#identitiesByKey.get(key);
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

  /** The identity numbered `id`, in use after the last commit: a prefix's made on each call. */
  identity(id: number): Identity | undefined {
    const prefix = this.#prefixesById.get(id | 0);
    return prefix === undefined ? this.#identitiesById.get(id) : new CidrIdentityRecord(prefix, this.#prefixCidrs[prefix] as Cidr, id, 1);
  }

  /** Every identity in use after the last commit: the prefixes' made as they are reached. */
  *identities(): IterableIterator<Identity> {
    yield* this.#identitiesById.values();
    for (const prefix of this.#prefixNumbers.values()) {
      const id = this.#prefixIds[prefix] as number;
      if (id !== 0) yield new CidrIdentityRecord(prefix, this.#prefixCidrs[prefix] as Cidr, id, 1);
    }
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
    for (const [text, prefix] of this.#prefixNumbers.entries()) {
      const identity = this.#prefixIds[prefix] as number;
      if (identity !== 0) entries.set(text, { key: ipcacheKeyOf(this.#prefixCidrs[prefix] as Cidr), value: { identity, flags: 0 } });
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
    for (const record of this.identities()) if (record.id !== IDENTITY_HOST) info.set(record.id, { id: record.id, description: describeIdentity(record) });
    return info;
  }

  /** How many identities {@link IpcacheCompiler.identityInfo} describes, without describing them. */
  get identityCount(): number {
    // The host key's record is numbered IDENTITY_HOST, one of the reserved identities.
    return RESERVED_IDENTITIES.length + this.#identitiesById.size + this.#prefixesById.size - (this.#identitiesById.has(IDENTITY_HOST) ? 1 : 0);
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
      const prefix = this.#prefixNumber(text, cidr);
      this.#prefixFlags[prefix] = used ? (this.#prefixFlags[prefix] as number) | PREFIX_USED : (this.#prefixFlags[prefix] as number) & ~PREFIX_USED;
      dirty.add(text);
    }
    // Only addresses inside an added or removed prefix can change class (every source is claimed: see #commitIpcache's end).
    if (!changed.empty) {
      for (const [text, source] of this.#sources) if (changed.longestPrefix(networkAddress(source.cidr))) dirty.add(text);
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
      const id = record instanceof CidrIdentityRecord ? this.#allocator.allocatePrefix(record.cls) : record.key === RESERVED_HOST_KEY ? IDENTITY_HOST : this.#allocator.allocate(record.key);
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
      const source = this.#sources.get(text);
      const prefix = this.#prefixNumbers.get(text);
      const current = this.#currentBinding(source, prefix);
      let wanted = this.#wantedBinding(source, prefix, current);
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
      removed.push(record);
      if (record instanceof CidrIdentityRecord) {
        this.#prefixesById.delete(record.id | 0);
        this.#allocator.releasePrefix(record.cls, record.id);
      } else {
        this.#identitiesById.delete(record.id);
        if (record.key !== RESERVED_HOST_KEY) this.#allocator.release(record.key, record.id);
      }
    }
    for (const record of added) {
      if (record instanceof CidrIdentityRecord) this.#prefixesById.set(record.id | 0, record.prefix);
      else this.#identitiesById.set(record.id, record);
    }

    const upserts: IpcacheEntry[] = [];
    const removals: IpcacheKey[] = [];
    const rebound = new Set<string>();
    for (const [text, wanted] of pending) {
      // A key with an entry wanted or held has a source or a prefix number: its claims or the binding keep them.
      const source = this.#sources.get(text);
      const prefix = this.#prefixNumbers.get(text);
      const current = this.#currentBinding(source, prefix);
      const cidr = source?.cidr ?? (this.#prefixCidrs[prefix as number] as Cidr);
      if (wanted) {
        if (!current || current.record.id !== wanted.record.id || current.flags !== wanted.flags) upserts.push(entryOf(cidr, wanted));
      } else {
        removals.push(ipcacheKeyOf(cidr));
      }
      if (current?.owner !== wanted?.owner || current?.record !== wanted?.record) {
        for (const pod of keysOf(source?.pods)) rebound.add(pod);
      }
      // Bound last: `current` may be the source itself.
      if (source) {
        const held = wanted?.owner === "prefix" ? undefined : wanted;
        source.record = held?.record;
        source.flags = held?.flags ?? 0;
        source.owner = held?.owner ?? "";
      }
      if (prefix !== undefined) {
        const own = wanted?.owner === "prefix";
        const flags = this.#prefixFlags[prefix] as number;
        this.#prefixIds[prefix] = own ? wanted.record.id : 0;
        this.#prefixFlags[prefix] = own ? flags | PREFIX_FRESH : flags & ~PREFIX_FRESH;
      }
    }
    for (const text of dirty) {
      const source = this.#sources.get(text);
      if (source && !source.host && source.pods === undefined) this.#sources.delete(text);
      const prefix = this.#prefixNumbers.get(text);
      // No policy claims it, so its entry went above (or a host or pod holds its address).
      if (prefix !== undefined && ((this.#prefixFlags[prefix] as number) & PREFIX_USED) === 0) this.#freePrefix(text, prefix);
    }
    return { upserts, removals, rebound, added, removed };
  }

  /** The entry a key has now: its address source's, or else its prefix's (a new record each call). */
  #currentBinding(source: IpcacheSource | undefined, prefix: number | undefined): IpcacheBinding | undefined {
    const binding = bindingOf(source);
    if (binding !== undefined || prefix === undefined) return binding;
    const id = this.#prefixIds[prefix] as number;
    return id === 0 ? undefined : { record: new CidrIdentityRecord(prefix, this.#prefixCidrs[prefix] as Cidr, id, 1), flags: 0, owner: "prefix" };
  }

  /**
   * What the ipcache entry of a key should be now: the host beats pods (smallest key first) beats a prefix. A
   * prefix's is `current`'s record while that is the prefix's own identity, so they compare equal.
   */
  #wantedBinding(source: IpcacheSource | undefined, prefix: number | undefined, current: IpcacheBinding | undefined): IpcacheBinding | undefined {
    if (source !== undefined && (source.host || source.pods !== undefined)) {
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
    if (prefix === undefined) return undefined;
    const flags = this.#prefixFlags[prefix] as number;
    if ((flags & PREFIX_USED) === 0) return undefined;
    const record = current?.owner === "prefix" && (flags & PREFIX_FRESH) !== 0 ? current.record : new CidrIdentityRecord(prefix, this.#prefixCidrs[prefix] as Cidr, 0, 0);
    return { record, flags: 0, owner: "prefix" };
  }

  /** The prefix, and its number, whose entry's identity is its own and keyed `key`, if any. */
  #heldPrefix(key: string): { text: string; number: number } | undefined {
    let text: string | undefined;
    try {
      text = identityKeyFields(key).cidr;
    } catch (cause) {
      // A key from the cluster's table that this compiler cannot have made: it numbers nothing here.
      if (cause instanceof IdentityKeyError) return undefined;
      throw cause;
    }
    const number = text === undefined ? undefined : this.#prefixNumbers.get(text);
    if (number === undefined || ((this.#prefixFlags[number] as number) & PREFIX_FRESH) === 0 || cidrIdentityKey(text as string) !== key) return undefined;
    return { text: text as string, number };
  }

  /** Drops a host or pod record from where the next commit would find it, so a later use makes a fresh one (and numbers it anew). */
  #forget(record: IdentityRecord): void {
    // A prefix's own record is found by nothing: its entry's state is set where the commit binds the key.
    if (!(record instanceof CidrIdentityRecord) && this.#identitiesByKey.get(record.key) === record) this.#identitiesByKey.delete(record.key);
  }

  /** The dense number of policy prefix `text`, numbering it if it has none. */
  #prefixNumber(text: string, cidr: Cidr): number {
    const prefix = this.#prefixNumbers.number(text);
    this.#prefixCidrs[prefix] = cidr;
    if (prefix >= this.#prefixIds.length) {
      const ids = new Float64Array(this.#prefixIds.length * 2);
      ids.set(this.#prefixIds);
      this.#prefixIds = ids;
      const flags = new Uint8Array(ids.length);
      flags.set(this.#prefixFlags);
      this.#prefixFlags = flags;
    }
    return prefix;
  }

  /** Frees the number of a prefix that no policy claims, so it holds no entry either; its slots are as new. */
  #freePrefix(text: string, prefix: number): void {
    this.#prefixNumbers.delete(text);
    this.#prefixCidrs[prefix] = undefined;
    this.#prefixFlags[prefix] = 0;
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
      source = { cidr, host: false, pods: undefined, record: undefined, flags: 0, owner: "" };
      this.#sources.set(text, source);
    }
    return source;
  }
}
