/**
 * The policy compiler: turns namespaces, pods, policies and host addresses
 * into {@link DesiredState} (ipcache, endpoints, policy entries), and keeps
 * doing so incrementally: each mutation marks only what it touches dirty,
 * and {@link PolicyCompiler.commit} recomputes just that and returns the
 * change as a {@link StateDiff}. It orchestrates the parts, each in its own
 * file:
 *
 * - the ipcache and its identities ({@link IpcacheCompiler}): an identity
 *   stands for everything policy can ask about an address, so replicas share
 *   one, and the kernel never evaluates a selector;
 * - rule matching ({@link RuleTable}): the pods each policy selects and the
 *   identities each rule targets;
 * - verdict and entry building ({@link SlotContentBuilder}): the entries of
 *   an endpoint, each holding the combination of every rule covering it;
 * - slot interning ({@link SlotTable}): endpoints with identical entries share
 *   a slot, and changed content gets a fresh one ("build new, then switch"),
 *   unless it differs only in identities that are new or gone, whose entries
 *   are added to or removed from the slot in place.
 *
 * @module
 */
import type { AnyPolicy } from "./api-types.ts";
import {
  DIRECTION_EGRESS,
  DIRECTION_INGRESS,
  EP_AUDIT_ISOLATED_EGRESS,
  EP_AUDIT_ISOLATED_INGRESS,
  EP_ISOLATED_EGRESS,
  EP_ISOLATED_INGRESS,
  EP_NO_ANY_PEER_EGRESS,
  EP_NO_ANY_PEER_INGRESS,
  emptyDiff,
  FIRST_ALLOCATED_IDENTITY,
  IDENTITY_ANY,
  kernelIdentity,
  policyKeyString,
  sameEndpointState,
  sameTcpLimits,
} from "./desired-state.ts";
import type { DesiredMaps, DesiredState, EndpointState, PolicyEntry, RuleRef, StateDiff, TcpLimits } from "./desired-state.ts";
import type { IdentityAllocator } from "./identity.ts";
import type { Identity } from "./ipcache-compiler.ts";
import { ruleIdsOf } from "./http-view.ts";
import type { HttpView } from "./http-view.ts";
import { IpcacheCompiler } from "./ipcache-compiler.ts";
import { normalizePolicy, policyObjectKey } from "./normalized-policy.ts";
import type { NormalizedPolicy, PolicyKind } from "./normalized-policy.ts";
import { RuleTable } from "./rule-table.ts";
import type { CompiledPolicy } from "./rule-table.ts";
import { hasGroup, sameGroups, SlotContentBuilder, TemplateNames } from "./slot-content.ts";
import type { SlotContent } from "./slot-content.ts";
import { indexAdd, indexDelete } from "./set-index.ts";
import { SlotTable } from "./slot-table.ts";
import type { NamespaceInfo, PodInfo, World } from "./world.ts";

export type { PolicyKind } from "./normalized-policy.ts";

/** Options of a {@link PolicyCompiler}. */
export interface PolicyCompilerOptions {
  /** Where identities come from; a `LocalIdentityAllocator` by default. */
  identities?: IdentityAllocator;
  /** Only pods on this node become endpoints (all pods still get ipcache entries); every pod if absent. */
  nodeName?: string;
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

interface EndpointRecord {
  state: EndpointState;
  namespace: string;
  /** The content of its slot, as the slot table holds it, to release it when the endpoint changes or goes. */
  content: SlotContent;
}

/** A local endpoint a commit recomputes, and its new content. */
interface PlannedEndpoint {
  key: string;
  pod: PodInfo;
  applying: CompiledPolicy[];
  content: SlotContent;
  old: EndpointRecord | undefined;
}

const IDLE: CommitStats = { policies: 0, ipcacheKeys: 0, identitiesAdded: 0, identitiesRemoved: 0, endpoints: 0 };

function isolationFlags(applying: readonly CompiledPolicy[]): number {
  let flags = 0;
  for (const { policy } of applying) {
    for (const type of policy.types) {
      flags |= type === "Ingress" ? EP_AUDIT_ISOLATED_INGRESS : EP_AUDIT_ISOLATED_EGRESS;
      if (policy.mode === "Enforce") flags |= type === "Ingress" ? EP_ISOLATED_INGRESS : EP_ISOLATED_EGRESS;
    }
  }
  return flags;
}

/**
 * The EP_NO_ANY_PEER_* flags of an endpoint with isolation flags `isolation`
 * and slot `content`: set for each isolated direction without an any-peer
 * group, whose lookup could only miss. Left clear when unsure (the datapath
 * then looks up), so an endpoint written by an older agent stays correct.
 */
function anyPeerFlags(isolation: number, content: SlotContent): number {
  const directions = [
    [DIRECTION_INGRESS, EP_ISOLATED_INGRESS | EP_AUDIT_ISOLATED_INGRESS, EP_NO_ANY_PEER_INGRESS],
    [DIRECTION_EGRESS, EP_ISOLATED_EGRESS | EP_AUDIT_ISOLATED_EGRESS, EP_NO_ANY_PEER_EGRESS],
  ] as const;
  let flags = 0;
  for (const [direction, isolating, noAnyPeer] of directions) {
    if ((isolation & isolating) === 0) continue;
    if (!hasGroup(content, direction, IDENTITY_ANY)) flags |= noAnyPeer;
  }
  return flags;
}

/**
 * The incremental policy compiler. Feed it objects as they change, then
 * `commit()` to get the diff to apply; read single answers with the narrow
 * reads, and the whole result with `state()`.
 *
 * @example
 * ```ts
 * const compiler = new PolicyCompiler();
 * compiler.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
 * compiler.upsertPod({ namespace: "x", name: "a", labels: { pod: "a" }, ips: ["10.0.0.1"], namedPorts: [] });
 * compiler.upsertPolicy(denyAllIngress);
 * const diff = compiler.commit(); // apply with the datapath
 * compiler.endpointOf("x/a"); // { endpointId: 1, identity: 256, slot: 1, flags: 5 }
 * ```
 */
export class PolicyCompiler {
  readonly #nodeName: string | undefined;
  readonly #ipcache: IpcacheCompiler;
  readonly #rules = new RuleTable();
  readonly #names = new TemplateNames();
  readonly #slots = new SlotTable(this.#names);

  // Policies as of the latest mutation, and those changed since the last commit.
  readonly #policies = new Map<string, NormalizedPolicy>();
  readonly #dirtyPolicies = new Set<string>();

  // Endpoints as of the last commit.
  readonly #endpoints = new Map<string, EndpointRecord>();
  /** The keys of {@link PolicyCompiler.#endpoints} by namespace: the pods whose policies' rules a commit follows. */
  readonly #endpointsByNamespace = new Map<string, Set<string>>();
  readonly #podByEndpointId = new Map<number, string>();
  #nextEndpointId = 1;
  #stats: CommitStats = IDLE;
  /** The TCP limits of rules as of the last commit. */
  readonly #tcpLimits = new Map<number, TcpLimits>();

  /** Creates an empty compiler. */
  constructor(options: PolicyCompilerOptions = {}) {
    this.#nodeName = options.nodeName;
    this.#ipcache = new IpcacheCompiler(options.identities === undefined ? {} : { identities: options.identities });
  }

  /** Adds or replaces a namespace. */
  upsertNamespace(ns: NamespaceInfo): void {
    this.#ipcache.upsertNamespace(ns);
  }

  /** Removes a namespace; its pods (if any remain) then see empty namespace labels. */
  deleteNamespace(name: string): void {
    this.#ipcache.deleteNamespace(name);
  }

  /**
   * Adds or replaces a pod (its IPs validated, as `buildWorld` leaves them).
   *
   * @throws {PolicyError} naming the pod and field when an IP does not parse; nothing changes then.
   */
  upsertPod(pod: PodInfo): void {
    this.#ipcache.upsertPod(pod);
  }

  /** Removes a pod. */
  deletePod(namespace: string, name: string): void {
    this.#ipcache.deletePod(namespace, name);
  }

  /**
   * Adds or replaces a policy, valid as validation leaves it (see {@link normalizePolicy}).
   *
   * @throws {PolicyError} naming the field of a policy that skipped validation and cannot be converted; nothing changes then.
   */
  upsertPolicy(policy: AnyPolicy): void {
    this.upsertNormalizedPolicy(normalizePolicy(policy));
  }

  /**
   * Adds or replaces a policy normalized already, which the compiler keeps
   * as it is and never changes: the agent's informer cache holds the same
   * object, so a policy's rules are held once.
   */
  upsertNormalizedPolicy(normalized: NormalizedPolicy): void {
    this.#policies.set(normalized.key, normalized);
    this.#dirtyPolicies.add(normalized.key);
    this.#ipcache.setPolicyPrefixes(normalized.key, normalized.prefixes);
  }

  /** Removes a policy. */
  deletePolicy(kind: PolicyKind, namespace: string, name: string): void {
    const key = policyObjectKey(kind, namespace, name);
    if (!this.#policies.delete(key)) return;
    this.#dirtyPolicies.add(key);
    this.#ipcache.setPolicyPrefixes(key, undefined);
  }

  /**
   * Sets the node's addresses (validated, as `buildWorld` and the agent's
   * conversion leave them): ingress from them is always allowed.
   *
   * @throws {IpParseError} when an address does not parse; nothing changes then.
   */
  setHostIPs(ips: string[]): void {
    this.#ipcache.setHostIPs(ips);
  }

  /** See {@link IpcacheCompiler.identitiesChanged}. */
  identitiesChanged(keys: Iterable<string>): void {
    this.#ipcache.identitiesChanged(keys);
  }

  /** See {@link IpcacheCompiler.pendingIdentityKeys}. */
  pendingIdentityKeys(): string[] {
    return this.#ipcache.pendingIdentityKeys();
  }

  /** Everything changed since the last commit, as a diff; the internal state advances. */
  commit(): StateDiff {
    const diff = emptyDiff();
    if (this.#dirtyPolicies.size === 0 && this.#ipcache.idle) {
      this.#stats = IDLE;
      return diff;
    }
    const addresses = this.#ipcache.commit();
    diff.ipcacheUpserts = addresses.upserts;
    diff.ipcacheRemovals = addresses.removals;
    const dirtyEndpoints = new Set([...addresses.pods.keys(), ...addresses.rebound]);
    const podsOf = (namespace: string): Iterable<string> => this.#ipcache.podsOf(namespace);
    const pod = (key: string): PodInfo | undefined => this.#ipcache.pod(key);
    // In key order, as are endpoints below: rule ids and slot numbers then do not depend on the order objects
    // arrived in, so an agent restarted on an unchanged cluster computes the entries its maps hold and writes none.
    for (const key of [...this.#dirtyPolicies].sort()) this.#rules.set(key, this.#policies.get(key), podsOf, pod, dirtyEndpoints);
    for (const [key, namespace] of addresses.pods) this.#rules.reselect(key, namespace, pod(key));
    const compiled = [...this.#dirtyPolicies].filter((key) => this.#policies.has(key)).length;
    this.#dirtyPolicies.clear();
    // Endpoints dirty only from here on keep their pod, policies and rules: only their rules' targets change.
    const changed = new Set(dirtyEndpoints);
    this.#rules.matchIdentities(addresses.added, addresses.removed, dirtyEndpoints, this.#endpointsByNamespace);
    this.#commitTcpLimits(diff);
    this.#commitEndpoints(dirtyEndpoints, changed, addresses, diff);
    this.#stats = {
      policies: compiled,
      ipcacheKeys: addresses.keys,
      identitiesAdded: addresses.added.length,
      identitiesRemoved: addresses.removed.length,
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
    return { ...this.mapsState(), rules: new Map(this.#rules.rules()), identities: this.#ipcache.identityInfo() };
  }

  /**
   * What of {@link state} the maps hold, as a snapshot built on each call: the agent's full sync
   * reads this, not the rules and the identity descriptions (about 20 MB at 100k CIDRs) it would not use.
   */
  mapsState(): DesiredMaps {
    const policy = new Map<string, PolicyEntry>();
    for (const entry of this.#slots.entries()) policy.set(policyKeyString(entry.key), entry);
    return {
      ipcache: this.#ipcache.entries(),
      endpoints: new Map([...this.#endpoints].map(([key, record]) => [key, record.state])),
      policy,
      tcpLimits: new Map(this.#tcpLimits),
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
    return this.#endpoints.get(pod)?.state;
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
    return this.#rules.rule(id);
  }

  /**
   * What the node's proxy judges requests by, as of the last commit: every local endpoint with its
   * addresses, and the entries (and their rules) of the slots whose flows HTTP rules judge.
   *
   * @example
   * ```ts
   * new HttpViewIndex(compiler.httpView()).judge(request, connection, identityOf);
   * ```
   */
  httpView(): HttpView {
    const policy = this.#slots.httpSlotEntries();
    const rules: [number, RuleRef][] = [];
    for (const id of ruleIdsOf(policy)) {
      const ref = this.#rules.rule(id);
      if (ref) rules.push([id, ref]);
    }
    const endpoints = [...this.#endpoints].map(([pod, record]) => ({ pod, addresses: [...(this.#ipcache.pod(pod)?.ips ?? [])], state: record.state }));
    return { version: 1, endpoints, policy, rules };
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
    return { policyEntries: this.#slots.size, endpoints: this.#endpoints.size, identities: this.#ipcache.identityCount };
  }

  /** The TCP limits of rules that gained, changed or lost them: few rules have any, so all are compared. */
  #commitTcpLimits(diff: StateDiff): void {
    const current = this.#rules.tcpLimits();
    for (const [id, limits] of current) {
      const old = this.#tcpLimits.get(id);
      if (old && sameTcpLimits(old, limits)) continue;
      this.#tcpLimits.set(id, limits);
      diff.tcpLimitUpserts.push([id, limits]);
    }
    for (const id of [...this.#tcpLimits.keys()]) {
      if (current.has(id)) continue;
      this.#tcpLimits.delete(id);
      diff.tcpLimitRemovals.push(id);
    }
  }

  /**
   * Recomputes dirty endpoints: flags, identity, entries, slot; then drops slots nobody uses. The
   * entries of an endpoint only its rules' targets changed for (not in `changed`) are patched: its
   * current ones for the identities that came or went. A slot whose users all move to one content
   * differing from it only in identities that came or went is changed in place (see {@link SlotTable.reshape}).
   */
  #commitEndpoints(dirty: Set<string>, changed: ReadonlySet<string>, identities: { added: readonly Identity[]; removed: readonly Identity[] }, diff: StateDiff): void {
    const contents = new SlotContentBuilder((id) => this.#ipcache.identity(id), this.#names);
    const added = identities.added.map((identity) => identity.id);
    const removed = new Set(identities.removed.map((identity) => identity.id));
    const touched = new Set([...added, ...removed]);
    const newIds = new Set(added);
    // A number both gone and new means two identities: not in place; nor the reserved ones.
    const mutable = (id: number): boolean => kernelIdentity(id) >= FIRST_ALLOCATED_IDENTITY && newIds.has(id) !== removed.has(id);
    const planned: PlannedEndpoint[] = [];
    for (const key of [...dirty].sort()) {
      const pod = this.#ipcache.pod(key);
      const old = this.#endpoints.get(key);
      if (!pod || (this.#nodeName !== undefined && pod.nodeName !== this.#nodeName)) {
        if (!old) continue;
        this.#endpoints.delete(key);
        indexDelete(this.#endpointsByNamespace, old.namespace, key);
        this.#podByEndpointId.delete(old.state.endpointId);
        diff.endpointRemovals.push(key);
        this.#slots.release(old.content);
        continue;
      }
      const applying = this.#rules.applyingTo(key, pod.namespace);
      const content =
        old && !changed.has(key) ? contents.patched(old.content, applying, pod, touched, added) : contents.contentOf(applying, pod);
      planned.push({ key, pod, applying, content, old });
    }
    const reshaped = this.#reshapeSlots(planned, contents, mutable, diff);
    for (const { key, pod, applying, content, old } of planned) {
      const slot = this.#slots.acquire(content, diff.policyUpserts);
      if (old) this.#slots.release(reshaped.get(old.content) ?? old.content);
      const isolation = isolationFlags(applying);
      const state: EndpointState = {
        endpointId: old?.state.endpointId ?? this.#nextEndpointId++,
        identity: this.#ipcache.podIdentity(key),
        slot,
        flags: isolation | anyPeerFlags(isolation, content),
      };
      this.#endpoints.set(key, { state, namespace: pod.namespace, content: this.#slots.content(content) });
      indexAdd(this.#endpointsByNamespace, pod.namespace, key);
      this.#podByEndpointId.set(state.endpointId, key);
      if (old && sameEndpointState(old.state, state)) continue;
      diff.endpointUpserts.push([key, state]);
    }
    this.#slots.sweep(diff.policyRemovals);
  }

  /**
   * Changes in place each slot whose users all move (are `planned` with other content) to a content
   * that differs from it only in groups of identities `mutable` accepts (new or gone in this commit),
   * the content most of them move to first. Returns the new content of each slot changed, by its old one.
   */
  #reshapeSlots(planned: readonly PlannedEndpoint[], contents: SlotContentBuilder, mutable: (identity: number) => boolean, diff: StateDiff): Map<SlotContent, SlotContent> {
    // By content object: the endpoints of one slot hold one, and those one change moves share one.
    const moving = new Map<SlotContent, Map<SlotContent, number>>();
    for (const { old, content } of planned) {
      if (!old || sameGroups(old.content, content)) continue;
      let targets = moving.get(old.content);
      if (!targets) {
        targets = new Map();
        moving.set(old.content, targets);
      }
      targets.set(content, (targets.get(content) ?? 0) + 1);
    }
    const reshaped = new Map<SlotContent, SlotContent>();
    for (const [current, targets] of moving) {
      // A user that stays (not dirty, or its content unchanged) keeps the slot as it is.
      if ([...targets.values()].reduce((sum, users) => sum + users, 0) !== this.#slots.users(current)) continue;
      // The content the most users move to, if the slot can take it; else the next.
      const to = [...targets]
        .sort((a, b) => b[1] - a[1])
        .find(([content]) => {
          const change = contents.change(current, content);
          return change !== undefined && this.#slots.reshape(current, content, change, mutable, diff.policyUpserts, diff.policyRemovals) !== undefined;
        });
      if (to) reshaped.set(current, to[0]);
    }
    return reshaped;
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
