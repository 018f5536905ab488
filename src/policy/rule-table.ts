/**
 * Rule matching, kept incrementally: for every policy, the pods of its
 * namespace its selector selects, and for every rule, a stable id and the
 * identities its peers match (through a {@link PeerIndex}). Selectors,
 * ipBlocks and named ports are all resolved here against identities, so the
 * kernel never evaluates a rule.
 *
 * @module
 */
import type { PolicyMode } from "./api-types.ts";
import { PROTOCOL_NUMBERS, ruleRefOrder } from "./desired-state.ts";
import type { RuleRef, TcpLimits } from "./desired-state.ts";
import { IdentitySet } from "./identity-set.ts";
import type { Identity } from "./ipcache-compiler.ts";
import type { NamedPortRef, NormalizedPolicy, NormalizedRule, PortRange } from "./normalized-policy.ts";
import { PeerIndex } from "./peer-index.ts";
import type { IndexedRule } from "./peer-index.ts";
import { PORT_BITS } from "./port-ranges.ts";
import { matchesSelector } from "./selector.ts";
import type { NamedPort, PodInfo } from "./world.ts";

/** A rule with its id and the identities it targets ({@link IndexedRule.identities}, kept by the rule table's {@link PeerIndex}). */
export interface CompiledRule extends IndexedRule {
  /** The key of the rule's policy. */
  policyKey: string;
  id: number;
  /** Sort key of the rule's reference (kind, namespace, name, direction, index): the tie-break among rules deciding one entry. */
  order: string;
  mode: PolicyMode;
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

function ruleRefKey(policy: NormalizedPolicy, rule: NormalizedRule): string {
  // Joined: one flat string, where a template leaves a chain of concatenations that the map of rule ids keeps.
  return [policy.key, rule.direction, rule.index].join("/");
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
 * table.matchIdentities(committed.added, committed.removed, touched, endpointsByNamespace); // committed = ipcache.commit()
 * table.applyingTo("shop/api", "shop"); // [the compiled policy], when its selector selects shop/api
 * ```
 */
export class RuleTable {
  readonly #policies = new Map<string, CompiledPolicy>();
  readonly #byNamespace = new Map<string, Set<string>>();
  /** The policies of a namespace in key order, once asked for: every dirty endpoint of it asks, per commit. */
  readonly #ordered = new Map<string, CompiledPolicy[]>();
  readonly #ruleIds = new Map<string, number>();
  #nextRuleId = 1;
  readonly #refs = new Map<number, RuleRef>();
  /** The rules with TCP connection limits, by id. */
  readonly #tcpLimits = new Map<number, TcpLimits>();
  readonly #peers = new PeerIndex<CompiledRule>();
  /** Policies compiled by {@link RuleTable.set} whose rules are not matched against identities yet, in the order compiled. */
  readonly #unmatched = new Set<CompiledPolicy>();

  /**
   * Compiles policy `key` afresh (absent: removes it), selecting among the
   * pods `podsOf` lists. Its rules target no identity until the next
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
        this.#peers.removeRule(rule);
        const refKey = ruleRefKey(old.policy, rule.rule);
        if (kept.has(refKey)) continue;
        this.#ruleIds.delete(refKey);
        this.#refs.delete(rule.id);
        this.#tcpLimits.delete(rule.id);
      }
      this.#byNamespace.get(old.policy.namespace)?.delete(key);
      this.#ordered.delete(old.policy.namespace);
      this.#policies.delete(key);
    }
    if (!compiled) return;
    this.#unmatched.add(compiled);
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
    this.#ordered.delete(compiled.policy.namespace);
    this.#policies.set(key, compiled);
  }

  /**
   * Matches a pod that changed (absent: was removed) against the policies of its namespace again. Policies
   * compiled since the last {@link RuleTable.matchIdentities} are skipped: {@link RuleTable.set} selected among
   * the pods `podsOf` lists then, so call this after the pods it lists changed (on a cold start every pod and
   * every policy is new, and each pair would be matched twice).
   */
  reselect(key: string, namespace: string, pod: PodInfo | undefined): void {
    for (const policyKey of this.#byNamespace.get(namespace) ?? []) {
      const compiled = this.#policies.get(policyKey) as CompiledPolicy;
      if (this.#unmatched.has(compiled)) continue;
      if (pod && matchesSelector(compiled.policy.selector, pod.labels)) compiled.selected.add(key);
      else compiled.selected.delete(key);
    }
  }

  /**
   * Brings the identities rules target up to date with the identities that
   * came (`added`) and went (`removed`) since the last call, and matches the
   * rules compiled since then. Adds the pods of policies whose earlier rules'
   * targets changed to `touched` (those of newly compiled ones are there already),
   * those `tracked` lists (pod keys by namespace): a node's compiler follows only
   * its endpoints, so a new identity that thousands of policies' rules target
   * costs a look at the few of them in namespaces holding endpoints, not at every
   * pod they select.
   */
  matchIdentities(added: readonly Identity[], removed: readonly Identity[], touched: Set<string>, tracked: ReadonlyMap<string, ReadonlySet<string>>): void {
    const changed = new Set<CompiledRule>();
    for (const identity of removed) this.#peers.removeIdentity(identity, changed);
    for (const identity of added) this.#peers.addIdentity(identity, changed);
    for (const compiled of this.#unmatched) {
      // A policy compiled again or removed since has no use for these rules.
      if (this.#policies.get(compiled.policy.key) === compiled) for (const rule of compiled.rules) this.#peers.addRule(rule);
    }
    this.#unmatched.clear();
    const policies = new Set<string>();
    for (const rule of changed) if (tracked.has(rule.namespace)) policies.add(rule.policyKey);
    for (const key of policies) {
      const compiled = this.#policies.get(key);
      if (!compiled) continue;
      for (const pod of tracked.get(compiled.policy.namespace) ?? []) if (compiled.selected.has(pod)) touched.add(pod);
    }
  }

  /** The policies applying to pod `key` of `namespace`, in key order. */
  applyingTo(key: string, namespace: string): CompiledPolicy[] {
    let ordered = this.#ordered.get(namespace);
    if (!ordered) {
      ordered = [...(this.#byNamespace.get(namespace) ?? [])].sort().map((policyKey) => this.#policies.get(policyKey) as CompiledPolicy);
      this.#ordered.set(namespace, ordered);
    }
    return ordered.filter((compiled) => compiled.selected.has(key));
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
        namespace: policy.namespace,
        policyKey: policy.key,
        id,
        order: ruleRefOrder({ kind: policy.kind, namespace: policy.namespace, name: policy.name, direction: rule.direction, index: rule.index }),
        mode: policy.mode,
        identities: new IdentitySet(),
      };
    });
    return { policy, rules, selected: new Set() };
  }
}
