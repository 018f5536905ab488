/**
 * Rule matching, kept incrementally: for every policy, the pods of its
 * namespace its selector selects, and for every rule, a stable id and the
 * identities its peers match. Selectors, ipBlocks and named ports are all
 * resolved here against identities, so the kernel never evaluates a rule.
 *
 * @module
 */
import type { PolicyMode } from "./api-types.ts";
import { PROTOCOL_NUMBERS, ruleRefOrder } from "./desired-state.ts";
import type { RuleRef, TcpLimits } from "./desired-state.ts";
import { CidrMap, cidrContains } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import type { Identity } from "./ipcache-compiler.ts";
import type { NamedPortRef, NormalizedPeer, NormalizedPolicy, NormalizedRule, PortRange } from "./normalized-policy.ts";
import { PORT_BITS } from "./port-ranges.ts";
import { matchesSelector } from "./selector.ts";
import type { NamedPort, PodInfo } from "./world.ts";

/** A rule with its id and the identities it targets. */
export interface CompiledRule {
  rule: NormalizedRule;
  /** The rule's peers, indexed for matching. */
  peers: RulePeers;
  id: number;
  /** Sort key of the rule's reference (kind, namespace, name, direction, index): the tie-break among rules deciding one entry. */
  order: string;
  mode: PolicyMode;
  /**
   * Identities the rule's items target: those its peers match, or, for an
   * any-peer egress rule, the pod identities having one of its named ports.
   */
  identities: Set<number>;
}

/** A policy with its compiled rules and the pods it selects. */
export interface CompiledPolicy {
  policy: NormalizedPolicy;
  rules: CompiledRule[];
  /** Pod keys of the policy's namespace its selector matches. */
  selected: Set<string>;
}

/**
 * The container ports of a pod that a named port of a rule names.
 *
 * @example
 * ```ts
 * resolveNamedPort({ name: "web", protocol: "TCP" }, [{ name: "web", port: 8080, protocol: "TCP" }]); // 8080/TCP
 * ```
 */
export function resolveNamedPort(ref: NamedPortRef, ports: readonly NamedPort[]): PortRange[] {
  const protocol = PROTOCOL_NUMBERS[ref.protocol];
  return ports
    .filter((p) => p.name === ref.name && p.protocol === ref.protocol)
    .map((p) => ({ protocol, lo: p.port, hi: p.port, prefixes: [{ port: p.port, prefixLen: PORT_BITS }] }));
}

function selectorPeerMatches(peer: NormalizedPeer, policyNamespace: string, identity: Identity): boolean {
  if (identity.kind !== "pod") return false;
  if (peer.namespaceSelector) {
    if (!matchesSelector(peer.namespaceSelector, identity.namespaceLabels)) return false;
  } else if (identity.namespace !== policyNamespace) {
    return false;
  }
  return peer.podSelector === undefined || matchesSelector(peer.podSelector, identity.podLabels);
}

/**
 * A rule's peers, indexed for matching identities: ipBlocks by prefix, so
 * matching an identity costs one lookup per distinct prefix length of the
 * rule however many CIDRs it lists (a rule of 100k peers against 100k
 * identities must not be 10^10 comparisons).
 */
class RulePeers {
  readonly #selectors: NormalizedPeer[] = [];
  /** The excepts of each ipBlock, by its CIDR (one list per ipBlock of that CIDR). */
  readonly #blocks = new CidrMap<Cidr[][]>();
  readonly #any: boolean;

  constructor(peers: readonly NormalizedPeer[] | undefined) {
    this.#any = peers === undefined;
    for (const peer of peers ?? []) {
      if (!peer.ipBlock) {
        this.#selectors.push(peer);
        continue;
      }
      const excepts = this.#blocks.get(peer.ipBlock.cidr);
      if (excepts) excepts.push(peer.ipBlock.except);
      else this.#blocks.set(peer.ipBlock.cidr, [peer.ipBlock.except]);
    }
  }

  /** Whether the rule lists no peers (any remote). */
  get any(): boolean {
    return this.#any;
  }

  /** Whether the rule lists an ipBlock: without one, it can only target pod identities. */
  get hasBlocks(): boolean {
    return !this.#blocks.empty;
  }

  /** Whether a peer matches the identity: an ipBlock containing its class and no except that does, or a selector. */
  match(policyNamespace: string, identity: Identity): boolean {
    const cls = identity.cls;
    if (cls !== undefined) {
      for (const blocks of this.#blocks.containing(cls)) {
        if (blocks.some((except) => !except.some((e) => cidrContains(e, cls)))) return true;
      }
    }
    return this.#selectors.some((peer) => selectorPeerMatches(peer, policyNamespace, identity));
  }
}

function ruleTargets(compiled: CompiledRule, policyNamespace: string, identity: Identity): boolean {
  if (!compiled.peers.any) return compiled.peers.match(policyNamespace, identity);
  // An any-peer rule reaches every identity through IDENTITY_ANY, except for
  // egress named ports, which resolve against each destination pod identity.
  const rule = compiled.rule;
  return (
    rule.direction === "Egress" &&
    identity.kind === "pod" &&
    (rule.ports?.named ?? []).some((ref) => resolveNamedPort(ref, identity.namedPorts).length > 0)
  );
}

function ruleRefKey(policy: NormalizedPolicy, rule: NormalizedRule): string {
  return `${policy.key}/${rule.direction}/${rule.index}`;
}

/**
 * The compiled policies. Rule ids stay the same while their rule (policy,
 * direction, index) exists, across edits of the policy.
 *
 * @example
 * ```ts
 * const table = new RuleTable();
 * const touched = new Set<string>();
 * table.set(policy.key, policy, (namespace) => ipcache.podsOf(namespace), (key) => ipcache.pod(key), touched);
 * table.matchIdentities(new Set([policy.key]), ipcache.identities(), [], [], touched);
 * table.applyingTo("shop/api", "shop"); // [the compiled policy], when its selector selects shop/api
 * ```
 */
export class RuleTable {
  readonly #policies = new Map<string, CompiledPolicy>();
  readonly #byNamespace = new Map<string, Set<string>>();
  readonly #ruleIds = new Map<string, number>();
  #nextRuleId = 1;
  readonly #refs = new Map<number, RuleRef>();
  /** The rules with TCP connection limits, by id. */
  readonly #tcpLimits = new Map<number, TcpLimits>();

  /**
   * Compiles policy `key` afresh (absent: removes it), selecting among the
   * pods `podsOf` lists. Its rules target no identity until
   * {@link RuleTable.matchIdentities}. Adds the pods it selected before or
   * selects now to `touched`.
   */
  set(key: string, policy: NormalizedPolicy | undefined, podsOf: (namespace: string) => Iterable<string>, pod: (key: string) => PodInfo | undefined, touched: Set<string>): void {
    const old = this.#policies.get(key);
    const kept = new Set<string>();
    const compiled = policy && this.#compile(policy, kept);
    if (old) {
      for (const selected of old.selected) touched.add(selected);
      for (const rule of old.rules) {
        const refKey = ruleRefKey(old.policy, rule.rule);
        if (kept.has(refKey)) continue;
        this.#ruleIds.delete(refKey);
        this.#refs.delete(rule.id);
        this.#tcpLimits.delete(rule.id);
      }
      this.#byNamespace.get(old.policy.namespace)?.delete(key);
      this.#policies.delete(key);
    }
    if (!compiled) return;
    for (const candidate of podsOf(compiled.policy.namespace)) {
      const labels = pod(candidate)?.labels;
      if (labels && matchesSelector(compiled.policy.selector, labels)) compiled.selected.add(candidate);
    }
    for (const selected of compiled.selected) touched.add(selected);
    let keys = this.#byNamespace.get(compiled.policy.namespace);
    if (!keys) {
      keys = new Set();
      this.#byNamespace.set(compiled.policy.namespace, keys);
    }
    keys.add(key);
    this.#policies.set(key, compiled);
  }

  /** Matches a pod that changed (absent: was removed) against the policies of its namespace again. */
  reselect(key: string, namespace: string, pod: PodInfo | undefined): void {
    for (const policyKey of this.#byNamespace.get(namespace) ?? []) {
      const compiled = this.#policies.get(policyKey) as CompiledPolicy;
      if (pod && matchesSelector(compiled.policy.selector, pod.labels)) compiled.selected.add(key);
      else compiled.selected.delete(key);
    }
  }

  /**
   * Brings the identities rules target up to date: the rules of the `fresh`
   * policies against every identity, the others against the identities that
   * came (`added`) and went (`removed`). Adds the pods of policies whose
   * targets changed to `touched`.
   */
  matchIdentities(fresh: ReadonlySet<string>, every: Iterable<Identity>, added: readonly Identity[], removed: readonly number[], touched: Set<string>): void {
    const everyIdentity = [...every];
    // Address identities (CIDRs, the host) outnumber pod ones in clusters with allow-lists, and only ipBlocks reach them.
    const podIdentities = everyIdentity.filter((identity) => identity.kind === "pod");
    const addedPods = added.filter((identity) => identity.kind === "pod");
    for (const [key, compiled] of this.#policies) {
      const namespace = compiled.policy.namespace;
      if (fresh.has(key)) {
        for (const rule of compiled.rules) {
          for (const identity of rule.peers.hasBlocks ? everyIdentity : podIdentities) if (ruleTargets(rule, namespace, identity)) rule.identities.add(identity.id);
        }
        continue;
      }
      if (added.length === 0 && removed.length === 0) continue;
      let changed = false;
      for (const rule of compiled.rules) {
        for (const id of removed) changed = rule.identities.delete(id) || changed;
        for (const identity of rule.peers.hasBlocks ? added : addedPods) {
          if (!ruleTargets(rule, namespace, identity)) continue;
          rule.identities.add(identity.id);
          changed = true;
        }
      }
      if (changed) for (const pod of compiled.selected) touched.add(pod);
    }
  }

  /** The policies applying to pod `key` of `namespace`, in key order. */
  applyingTo(key: string, namespace: string): CompiledPolicy[] {
    return [...(this.#byNamespace.get(namespace) ?? [])]
      .sort()
      .map((policyKey) => this.#policies.get(policyKey) as CompiledPolicy)
      .filter((compiled) => compiled.selected.has(key));
  }

  /** What rule `id` stands for. */
  rule(id: number): RuleRef | undefined {
    return this.#refs.get(id);
  }

  /** Every rule, by id. */
  rules(): ReadonlyMap<number, RuleRef> {
    return this.#refs;
  }

  /** The limits of every rule with TCP connection limits, by id. */
  tcpLimits(): ReadonlyMap<number, TcpLimits> {
    return this.#tcpLimits;
  }

  #compile(policy: NormalizedPolicy, kept: Set<string>): CompiledPolicy {
    const rules = policy.rules.map((rule): CompiledRule => {
      const refKey = ruleRefKey(policy, rule);
      kept.add(refKey);
      let id = this.#ruleIds.get(refKey);
      if (id === undefined) {
        id = this.#nextRuleId++;
        this.#ruleIds.set(refKey, id);
      }
      this.#refs.set(id, {
        kind: policy.kind,
        namespace: policy.namespace,
        name: policy.name,
        direction: rule.direction,
        index: rule.index,
        action: rule.action,
        mode: policy.mode,
        ...(rule.http ? { http: rule.http } : {}),
        ...(rule.tls ? { tls: rule.tls } : {}),
      });
      if (rule.tcpLimits) this.#tcpLimits.set(id, rule.tcpLimits);
      else this.#tcpLimits.delete(id);
      return {
        rule,
        peers: new RulePeers(rule.peers),
        id,
        order: ruleRefOrder({ kind: policy.kind, namespace: policy.namespace, name: policy.name, direction: rule.direction, index: rule.index }),
        mode: policy.mode,
        identities: new Set(),
      };
    });
    return { policy, rules, selected: new Set() };
  }
}
