/**
 * The identities each rule's peers match, kept through two indexes so that
 * a rule costs what it matches, not what the cluster holds:
 *
 * - selector peers are shared: every distinct (namespace selector, or the
 *   policy's namespace, and pod selector) is matched against the pod
 *   identities once, however many rules list it (in a large cluster
 *   thousands of rules say `team=X` or `app=Y`), and a new identity is
 *   matched once per distinct selector; a selector without a namespace
 *   selector only meets the identities of its namespace;
 * - identities are indexed by CIDR class, so an ipBlock finds those inside
 *   it with a few lookups ({@link CidrMap.inside}) instead of meeting all of
 *   them, and rules' ipBlocks by CIDR, so a new identity finds the blocks
 *   containing its class the same way.
 *
 * @module
 */
import type { LabelSelector } from "./api-types.ts";
import { IdentitySet } from "./identity-set.ts";
import { CidrMap, cidrContains } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import type { Identity } from "./ipcache-compiler.ts";
import { ipBlockOf, isSelectorPeer, NO_EXCEPT } from "./normalized-policy.ts";
import type { NamedPortRef, NormalizedRule, SelectorPeer } from "./normalized-policy.ts";
import { matchesSelector } from "./selector.ts";
import type { Labels } from "./selector.ts";
import { indexAdd } from "./set-index.ts";
import type { NamedPort } from "./world.ts";

/** A rule as the index matches it; `identities` is what the index maintains. */
export interface IndexedRule {
  readonly rule: NormalizedRule;
  /** The namespace of the rule's policy: where a selector peer without a namespace selector looks. */
  readonly namespace: string;
  /**
   * Identities the rule's items target: those its peers match, or, for an
   * any-peer egress rule, the pod identities having one of its named ports.
   * Read only: {@link PeerIndex.addRule} gives a rule whose one peer is a
   * selector that selector's own set, shared by every such rule listing it.
   */
  identities: IdentitySet;
}

/** One distinct selector peer, the pod identities it matches, and the rules listing it. */
interface SharedSelector<R> {
  key: string;
  namespaceSelector: LabelSelector | undefined;
  /** The policy namespace, when there is no namespace selector. */
  namespace: string;
  podSelector: LabelSelector | undefined;
  /** The identities matched: also the targets of the rules listing only this peer, which share the set. */
  ids: IdentitySet;
  rules: Set<R>;
}

/** Pod identities of one namespace with one set of namespace labels (an identity whose new key is pending keeps the old labels). */
interface NamespaceGroup {
  key: string;
  namespace: string;
  labels: Labels;
  identities: Map<number, Identity>;
}

/**
 * An ipBlock of a rule: the rule and the block's excepts, chained to the next
 * rule's block of the same CIDR. A chain, not an array per CIDR: most CIDRs
 * have one user, and an array each costs ~60 bytes more (3 MB at 50k CIDRs).
 */
class BlockUser<R> {
  readonly rule: R;
  readonly except: readonly Cidr[];
  readonly next: BlockUser<R> | undefined;

  constructor(rule: R, except: readonly Cidr[], next: BlockUser<R> | undefined) {
    this.rule = rule;
    this.except = except;
    this.next = next;
  }
}

/**
 * The ipBlocks of one CIDR: the rule itself when it is the only one and has no
 * excepts, as nearly every CIDR of an allow-list (a chain link each would
 * cost ~48 bytes more, 4.6 MB at 100k CIDRs), else the chain.
 */
type BlockUsers<R> = R | BlockUser<R>;

/** The chain of a CIDR's ipBlocks, or none. */
function chainOf<R>(users: BlockUsers<R> | undefined): BlockUser<R> | undefined {
  if (users === undefined || users instanceof BlockUser) return users as BlockUser<R> | undefined;
  return new BlockUser(users, NO_EXCEPT, undefined);
}

/** Visits each ipBlock of a CIDR with its rule and excepts. */
function forEachBlock<R>(users: BlockUsers<R>, visit: (rule: R, except: readonly Cidr[]) => void): void {
  if (!(users instanceof BlockUser)) {
    visit(users, NO_EXCEPT);
    return;
  }
  for (let user: BlockUser<R> | undefined = users as BlockUser<R>; user; user = user.next) visit(user.rule, user.except);
}

/** The ipBlocks a chain holds, as kept: a lone block without excepts as its bare rule. */
function blockUsersOf<R>(chain: BlockUser<R> | undefined): BlockUsers<R> | undefined {
  return chain !== undefined && chain.next === undefined && chain.except.length === 0 ? chain.rule : chain;
}

/**
 * The numbers of the identities having a CIDR class: the one most classes
 * have, an array from the second on (an object and an array each would cost
 * ~100 bytes more, 10 MB at 100k CIDRs). Numbers, not the identities: the
 * ipcache compiler holds no object for a policy prefix's own identity (100k of
 * them), and the class is the key they are held by.
 */
type ClassMembers = number | number[];

/** A class's identities' numbers. */
function membersOf(members: ClassMembers): readonly number[] {
  return Array.isArray(members) ? members : [members];
}

/** Whether a named port of a rule names one of a pod's container ports. */
function namesPort(refs: readonly NamedPortRef[], ports: readonly NamedPort[]): boolean {
  return refs.some((ref) => ports.some((p) => p.name === ref.name && p.protocol === ref.protocol));
}

/** Labels in key order: equal label sets give equal JSON. */
function sortedLabels(labels: Labels): [string, string][] {
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function selectorText(selector: LabelSelector | undefined): unknown {
  if (selector === undefined) return null;
  return [sortedLabels(selector.matchLabels ?? {}), selector.matchExpressions ?? []];
}

function selectorKey(peer: SelectorPeer, namespace: string): string {
  return JSON.stringify([selectorText(peer.namespaceSelector), peer.namespaceSelector ? "" : namespace, selectorText(peer.podSelector)]);
}

function namedPortsOf(rule: NormalizedRule): readonly NamedPortRef[] {
  // An any-peer ingress rule reaches every identity through IDENTITY_ANY and targets none itself.
  return rule.peers === undefined && rule.direction === "Egress" ? (rule.ports?.named ?? []) : [];
}

/**
 * The identities in use and the rules matched against them. Identities come
 * and go through {@link PeerIndex.addIdentity} and
 * {@link PeerIndex.removeIdentity}, which update the targets of the rules
 * registered; a rule registered by {@link PeerIndex.addRule} is matched
 * against the identities present.
 *
 * @example
 * ```ts
 * const index = new PeerIndex<IndexedRule>();
 * const changed = new Set<IndexedRule>();
 * index.addIdentity(identity, changed); // rules already registered that now target it are added to `changed`
 * index.addRule(rule);                  // rule.identities: every identity its peers match
 * index.removeRule(rule);
 * ```
 */
export class PeerIndex<R extends IndexedRule> {
  #identityCount = 0;
  readonly #groups = new Map<string, NamespaceGroup>();
  readonly #groupsByNamespace = new Map<string, Set<NamespaceGroup>>();
  readonly #classes = new CidrMap<ClassMembers>();
  readonly #selectors = new Map<string, SharedSelector<R>>();
  /** Selectors without a namespace selector, by their policy's namespace: a pod identity meets only those of its own. */
  readonly #selectorsByNamespace = new Map<string, Set<SharedSelector<R>>>();
  readonly #namespaceSelectors = new Set<SharedSelector<R>>();
  readonly #blocks = new CidrMap<BlockUsers<R>>();
  /** Any-peer egress rules with named ports. */
  readonly #namedPortRules = new Set<R>();

  /** How many identities are indexed. */
  get identityCount(): number {
    return this.#identityCount;
  }

  /** How many distinct selector peers the registered rules list. */
  get selectorCount(): number {
    return this.#selectors.size;
  }

  /** Indexes a new identity and adds it to the targets of the registered rules matching it, adding those rules to `changed`. */
  addIdentity(identity: Identity, changed: Set<R>): void {
    const id = identity.id;
    this.#identityCount++;
    const target = (rule: R): void => {
      rule.identities.add(id);
      changed.add(rule);
    };
    const cls = identity.cls;
    if (cls !== undefined) {
      const members = this.#classes.get(cls);
      if (members === undefined) this.#classes.set(cls, id);
      else if (!Array.isArray(members)) this.#classes.set(cls, [members, id]);
      else members.push(id);
      for (const users of this.#blocks.containing(cls)) {
        forEachBlock(users, (rule, except) => {
          if (!except.some((e) => cidrContains(e, cls))) target(rule);
        });
      }
    }
    if (identity.kind !== "pod") return;
    this.#group(identity).identities.set(id, identity);
    for (const selector of this.#selectorsFor(identity)) {
      if (!this.#selects(selector, identity)) continue;
      selector.ids.add(id);
      // A rule sharing the selector's set targets the identity now: one insertion for all of them.
      for (const rule of selector.rules) {
        if (rule.identities === selector.ids) changed.add(rule);
        else target(rule);
      }
    }
    for (const rule of this.#namedPortRules) if (namesPort(namedPortsOf(rule.rule), identity.namedPorts)) target(rule);
  }

  /** Forgets an identity indexed and removes it from the targets of the rules having it, adding those rules to `changed`. */
  removeIdentity(identity: Identity, changed: Set<R>): void {
    const id = identity.id;
    this.#identityCount--;
    const untarget = (rule: R): void => {
      if (rule.identities.delete(id)) changed.add(rule);
    };
    const cls = identity.cls;
    if (cls !== undefined) {
      const others = membersOf(this.#classes.get(cls) as ClassMembers).filter((member) => member !== id);
      if (others.length === 0) this.#classes.delete(cls);
      else this.#classes.set(cls, others.length === 1 ? (others[0] as number) : others);
      for (const users of this.#blocks.containing(cls)) forEachBlock(users, untarget);
    }
    if (identity.kind !== "pod") return;
    const group = this.#group(identity);
    group.identities.delete(id);
    if (group.identities.size === 0) {
      this.#groups.delete(group.key);
      this.#groupsByNamespace.get(group.namespace)?.delete(group);
    }
    for (const selector of this.#selectorsFor(identity)) {
      if (!selector.ids.delete(id)) continue;
      for (const rule of selector.rules) {
        if (rule.identities === selector.ids) changed.add(rule);
        else untarget(rule);
      }
    }
    for (const rule of this.#namedPortRules) untarget(rule);
  }

  /**
   * Registers a rule and sets its targets from the identities indexed. A rule whose one peer is a selector
   * (nearly every rule of a large cluster) gets that selector's set as its targets, kept as identities come
   * and go: a namespace relabelled at full size then changes 4 selectors' sets, not 2,000 rules' copies.
   */
  addRule(rule: R): void {
    const peers = rule.rule.peers;
    const only = peers?.length === 1 ? peers[0] : undefined;
    if (only !== undefined && isSelectorPeer(only)) {
      const selector = this.#selector(only, rule.namespace);
      selector.rules.add(rule);
      rule.identities = selector.ids;
      return;
    }
    // Gathered, then added at once: one sort instead of an insertion each.
    const found: number[] = [];
    if (peers === undefined) {
      const named = namedPortsOf(rule.rule);
      if (named.length === 0) return;
      this.#namedPortRules.add(rule);
      for (const group of this.#groups.values()) {
        for (const identity of group.identities.values()) if (namesPort(named, identity.namedPorts)) found.push(identity.id);
      }
      rule.identities.addAll(found);
      return;
    }
    for (const peer of peers) {
      if (!isSelectorPeer(peer)) {
        const { cidr, except } = ipBlockOf(peer);
        this.#blocks.set(cidr, blockUsersOf(new BlockUser(rule, except, chainOf(this.#blocks.get(cidr)))) as BlockUsers<R>);
        for (const members of this.#classes.inside(cidr, except)) {
          if (Array.isArray(members)) for (const id of members) found.push(id);
          else found.push(members);
        }
        continue;
      }
      const selector = this.#selector(peer, rule.namespace);
      selector.rules.add(rule);
      for (const id of selector.ids) found.push(id);
    }
    rule.identities.addAll(found);
  }

  /** Unregisters a rule; its targets are no longer kept (a set shared with its selector may still change): read them no more. */
  removeRule(rule: R): void {
    const peers = rule.rule.peers;
    if (peers === undefined) {
      this.#namedPortRules.delete(rule);
      return;
    }
    for (const peer of peers) {
      if (!isSelectorPeer(peer)) {
        const cidr = ipBlockOf(peer).cidr;
        // The chain without the rule's block (in reverse order, which no reader depends on).
        let kept: BlockUser<R> | undefined;
        for (let user = chainOf(this.#blocks.get(cidr)); user; user = user.next) if (user.rule !== rule) kept = new BlockUser(user.rule, user.except, kept);
        const users = blockUsersOf(kept);
        if (users) this.#blocks.set(cidr, users);
        else this.#blocks.delete(cidr);
        continue;
      }
      const selector = this.#selectors.get(selectorKey(peer, rule.namespace));
      if (!selector) continue;
      selector.rules.delete(rule);
      if (selector.rules.size > 0) continue;
      this.#selectors.delete(selector.key);
      if (selector.namespaceSelector) this.#namespaceSelectors.delete(selector);
      else this.#selectorsByNamespace.get(selector.namespace)?.delete(selector);
    }
  }

  /** The shared selector of a peer, matched against the pod identities when first listed. */
  #selector(peer: SelectorPeer, namespace: string): SharedSelector<R> {
    const key = selectorKey(peer, namespace);
    let selector = this.#selectors.get(key);
    if (selector) return selector;
    selector = { key, namespaceSelector: peer.namespaceSelector, namespace, podSelector: peer.podSelector, ids: new IdentitySet(), rules: new Set() };
    this.#selectors.set(key, selector);
    if (selector.namespaceSelector) this.#namespaceSelectors.add(selector);
    else indexAdd(this.#selectorsByNamespace, namespace, selector);
    const groups = selector.namespaceSelector ? this.#groups.values() : (this.#groupsByNamespace.get(namespace) ?? []);
    const found: number[] = [];
    for (const group of groups) {
      // The namespace part once per group, the pod part per identity.
      if (selector.namespaceSelector && !matchesSelector(selector.namespaceSelector, group.labels)) continue;
      for (const identity of group.identities.values()) {
        if (selector.podSelector === undefined || matchesSelector(selector.podSelector, identity.podLabels)) found.push(identity.id);
      }
    }
    selector.ids.addAll(found);
    return selector;
  }

  /** The selectors a pod identity can match: those of its namespace and those with a namespace selector. */
  *#selectorsFor(identity: Identity): Iterable<SharedSelector<R>> {
    yield* this.#selectorsByNamespace.get(identity.namespace) ?? [];
    yield* this.#namespaceSelectors;
  }

  #selects(selector: SharedSelector<R>, identity: Identity): boolean {
    if (selector.namespaceSelector ? !matchesSelector(selector.namespaceSelector, identity.namespaceLabels) : identity.namespace !== selector.namespace) return false;
    return selector.podSelector === undefined || matchesSelector(selector.podSelector, identity.podLabels);
  }

  #group(identity: Identity): NamespaceGroup {
    const key = JSON.stringify([identity.namespace, sortedLabels(identity.namespaceLabels)]);
    let group = this.#groups.get(key);
    if (!group) {
      group = { key, namespace: identity.namespace, labels: identity.namespaceLabels, identities: new Map() };
      this.#groups.set(key, group);
      indexAdd(this.#groupsByNamespace, identity.namespace, group);
    }
    return group;
  }
}
