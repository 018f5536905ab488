/**
 * Verdict and entry building: the policy entries an endpoint needs, from the
 * policies that apply to it. Rule items are grouped by (remote identity,
 * direction); each group becomes one entry per port prefix any item names,
 * valued by every item covering that prefix (Deny over Allow, separately for
 * the enforced and the audit verdict, and whether the allow holds only for
 * strict TCP or only within connection limits), so the kernel's
 * longest-prefix match alone is the answer. Among rules deciding one entry,
 * the first in reference order (kind, namespace, name, direction, index) names it, so the
 * choice never depends on how ids were numbered.
 *
 * @module
 */
import type { RuleAction } from "./api-types.ts";
import {
  DIRECTION_EGRESS,
  DIRECTION_INGRESS,
  IDENTITY_ANY,
  POLICY_FLAG_AUDIT_HTTP,
  POLICY_FLAG_AUDIT_HTTP_DENY,
  POLICY_FLAG_AUDIT_TCP_LIMITED,
  POLICY_FLAG_AUDIT_TCP_STRICT,
  POLICY_FLAG_HTTP,
  POLICY_FLAG_HTTP_DENY,
  POLICY_FLAG_TCP_LIMITED,
  POLICY_FLAG_TCP_STRICT,
  VERDICT_ALLOW,
  VERDICT_DENY,
  VERDICT_NONE,
} from "./desired-state.ts";
import type { Direction, PolicyHttp, PolicyKey, PolicyValue, PolicyVerdict } from "./desired-state.ts";
import type { Identity } from "./ipcache-compiler.ts";
import { ANY_PORT_RANGE } from "./normalized-policy.ts";
import type { PortRange } from "./normalized-policy.ts";
import { portPrefixRange } from "./port-ranges.ts";
import { resolveNamedPort } from "./rule-table.ts";
import type { CompiledPolicy, CompiledRule } from "./rule-table.ts";
import type { PodInfo } from "./world.ts";

/**
 * The entries the rule items of one (identity, direction) yield, without
 * slot and identity, their canonical text, and the short name of that text
 * (see {@link TemplateNames}). Groups with the same items share one template,
 * and one value object per distinct value.
 */
export interface GroupTemplate {
  name: string;
  text: string;
  entries: (Pick<PolicyKey, "protocol" | "port" | "portPrefixLen"> & { value: PolicyValue })[];
}

/**
 * Short names for template texts, so that a group's hash and its comparison
 * with another content's read a name instead of the text of its entries. A name
 * means one text for as long as a slot holds a group of it (the slot table
 * counts them) and is forgotten at the sweep after none does, so texts that
 * new rule ids make do not pile up. Names are never reused.
 *
 * @example
 * ```ts
 * const names = new TemplateNames();
 * names.name("6/80/16=1,1,3,3,0"); // "0"
 * ```
 */
export class TemplateNames {
  readonly #byText = new Map<string, { name: string; users: number }>();
  #next = 0;
  /** Texts that may have no user: named since the last sweep, or released. */
  #unused = new Set<string>();

  /** The name of `text`, given it now if it has none. */
  name(text: string): string {
    let named = this.#byText.get(text);
    if (!named) {
      named = { name: (this.#next++).toString(36), users: 0 };
      this.#byText.set(text, named);
      this.#unused.add(text);
    }
    return named.name;
  }

  /** Counts a slot's group of `template` as a user of its name. */
  retain(template: GroupTemplate): void {
    (this.#byText.get(template.text) as { users: number }).users++;
  }

  /** Drops a user counted by {@link TemplateNames.retain}. */
  release(template: GroupTemplate): void {
    const named = this.#byText.get(template.text) as { users: number };
    if (--named.users === 0) this.#unused.add(template.text);
  }

  /** Forgets the names no slot's group uses: called last in a commit, when every slot has its content. */
  sweep(): void {
    for (const text of this.#unused) if (this.#byText.get(text)?.users === 0) this.#byText.delete(text);
    this.#unused = new Set();
  }

  /** How many texts have a name. */
  get size(): number {
    return this.#byText.size;
  }
}

/**
 * The entries of a slot, as templates per (identity, direction), and `hash`, the sum (modulo 2^32) of a
 * hash of each group ({@link contentHash}): the slot's content address. A sum does not depend on the
 * groups' order, so a patched content's hash is its current one minus the groups dropped plus those
 * added, and a content of thousands of groups is not read whole to address it. Contents of equal hash
 * may still differ: the slot table compares their groups ({@link sameGroups}).
 */
export interface SlotContent {
  hash: number;
  groups: { identity: number; direction: Direction; template: GroupTemplate }[];
}

/** What one content drops from another and adds to it, in whole groups (each sorted like a content's). */
export interface ContentChange {
  dropped: readonly SlotContent["groups"][number][];
  added: readonly SlotContent["groups"][number][];
}

/**
 * Whether `content` has a group of `identity` in `direction`: a binary search, groups being sorted.
 *
 * @example
 * ```ts
 * hasGroup(content, DIRECTION_INGRESS, IDENTITY_ANY); // whether an any-peer lookup can hit
 * ```
 */
export function hasGroup(content: SlotContent, direction: Direction, identity: number): boolean {
  return groupIndex(content.groups, direction, identity) >= 0;
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

/** Whether a rule counts for the enforced verdict (Enforce mode), or for the audit verdict (every rule). */
function counts(rule: CompiledRule, enforcedOnly: boolean): boolean {
  return !enforcedOnly || rule.mode === "Enforce";
}

/** Whether the node's proxy judges what the rule covers: it has `http` (requests) or `tls` (connections). */
function judgedByProxy(rule: CompiledRule): boolean {
  return rule.rule.http !== undefined || rule.rule.tls !== undefined;
}

/** A Deny rule with `http` or `tls` refuses requests or connections in the proxy, not packets: it is no L4 deny. */
function l4Action(rule: CompiledRule): RuleAction | undefined {
  return rule.rule.action === "Deny" && judgedByProxy(rule) ? undefined : rule.rule.action;
}

function decide(rules: CompiledRule[], action: RuleAction, enforcedOnly: boolean): CompiledRule | undefined {
  let best: CompiledRule | undefined;
  for (const rule of rules) {
    if (l4Action(rule) !== action || !counts(rule, enforcedOnly)) continue;
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

/**
 * Whether an allow verdict over `rules` holds only for strict TCP: every Allow
 * rule behind it (Enforce-mode only, for the enforced verdict) has
 * `tcp.strict`. One without it admits the traffic as it is: rules add up.
 */
function strictOf(rules: CompiledRule[], enforcedOnly: boolean): boolean {
  return everyAllow(rules, enforcedOnly, (rule) => rule.rule.tcpStrict);
}

/** Whether `holds` is true of every Allow rule behind an allow verdict over `rules`. */
function everyAllow(rules: CompiledRule[], enforcedOnly: boolean, holds: (rule: CompiledRule) => boolean): boolean {
  return rules.every((rule) => rule.rule.action !== "Allow" || !counts(rule, enforcedOnly) || holds(rule));
}

/** Ids, in reference order, of the rules with `http` or `tls` of `action` counting for the verdict. */
function httpRules(rules: CompiledRule[], action: RuleAction, enforcedOnly: boolean): number[] {
  return rules
    .filter((rule) => rule.rule.action === action && judgedByProxy(rule) && counts(rule, enforcedOnly))
    .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0))
    .map((rule) => rule.id);
}

/**
 * The proxy's flags of an entry and the rules behind them: an allow holding only through rules with `http`
 * or `tls` (so each request, or the connection's ClientHello, must match one of theirs), and the Deny rules
 * with `http` or `tls` covering it (so what they match is refused, whatever allows the flow). Either makes
 * the kernel steer the flow to the proxy.
 */
function httpOf(rules: CompiledRule[], verdict: PolicyVerdict, auditVerdict: PolicyVerdict): { flags: number; http: PolicyHttp | undefined } {
  const allowsOnlyHttp = (enforcedOnly: boolean) => everyAllow(rules, enforcedOnly, judgedByProxy);
  const http: PolicyHttp = {
    allows: verdict === VERDICT_ALLOW && allowsOnlyHttp(true) ? httpRules(rules, "Allow", true) : [],
    denies: httpRules(rules, "Deny", true),
    auditAllows: auditVerdict === VERDICT_ALLOW && allowsOnlyHttp(false) ? httpRules(rules, "Allow", false) : [],
    auditDenies: httpRules(rules, "Deny", false),
  };
  const flags =
    (http.allows.length > 0 ? POLICY_FLAG_HTTP : 0) |
    (http.denies.length > 0 ? POLICY_FLAG_HTTP_DENY : 0) |
    (http.auditAllows.length > 0 ? POLICY_FLAG_AUDIT_HTTP : 0) |
    (http.auditDenies.length > 0 ? POLICY_FLAG_AUDIT_HTTP_DENY : 0);
  return { flags, http: flags === 0 ? undefined : http };
}

/**
 * Whether an allow verdict over `rules` is limited: every Allow rule behind it
 * (Enforce-mode only, for the enforced verdict) has TCP connection limits. One
 * without them admits the traffic unlimited: rules add up. The limits that
 * apply are those of the rule deciding the entry (its `ruleId`), which is
 * charged for the connection.
 */
function limitedOf(rules: CompiledRule[], enforcedOnly: boolean): boolean {
  return everyAllow(rules, enforcedOnly, (rule) => rule.rule.tcpLimits !== undefined);
}

function ruleItems(rule: CompiledRule, ports: PortRange[]): RuleItems {
  return {
    items: ports.map((port) => ({ port, rule })),
    signature: ports.map((p) => `${p.protocol},${p.lo},${p.hi},${rule.id};`).join(""),
  };
}

/** Entries for one group's items: a key per item prefix, valued by every item covering it. */
function groupTemplate(items: RuleItem[]): Omit<GroupTemplate, "name"> {
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
    const flags =
      (verdict === VERDICT_ALLOW && strictOf(covering, true) ? POLICY_FLAG_TCP_STRICT : 0) |
      (auditVerdict === VERDICT_ALLOW && strictOf(covering, false) ? POLICY_FLAG_AUDIT_TCP_STRICT : 0) |
      (verdict === VERDICT_ALLOW && limitedOf(covering, true) ? POLICY_FLAG_TCP_LIMITED : 0) |
      (auditVerdict === VERDICT_ALLOW && limitedOf(covering, false) ? POLICY_FLAG_AUDIT_TCP_LIMITED : 0);
    const http = httpOf(covering, verdict, auditVerdict);
    const httpText = http.http ? `,${http.http.allows}/${http.http.denies}/${http.http.auditAllows}/${http.http.auditDenies}` : "";
    const valueText = `${verdict},${auditVerdict},${ruleId},${auditRuleId},${flags | http.flags}${httpText}`;
    let value = values.get(valueText);
    if (!value) {
      value = { verdict, auditVerdict, ruleId, auditRuleId, flags: flags | http.flags, ...(http.http ? { http: http.http } : {}) };
      values.set(valueText, value);
    }
    const port = key.protocol === 0 ? 0 : key.lo;
    entries.push({
      text: `${key.protocol}/${port}/${key.prefixLen}=${valueText}`,
      entry: { protocol: key.protocol, port, portPrefixLen: key.prefixLen, value },
    });
  }
  entries.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  return { text: entries.map((e) => e.text).join(";"), entries: entries.map((e) => e.entry) };
}

/**
 * Builds the slot content of endpoints within one commit, remembering what it
 * built: endpoints of equal policies and named ports share one content, and
 * groups of equal items one template. A builder lives for one commit only,
 * since rule ids stand for their rule's action, mode and order only that long
 * (a content patched from an earlier commit's keeps only groups whose rules did
 * not change, see {@link SlotContentBuilder.patched}).
 *
 * @example
 * ```ts
 * const builder = new SlotContentBuilder((id) => ipcache.identity(id), names);
 * const content = builder.contentOf(rules.applyingTo("shop/api", "shop"), pod);
 * ```
 */
export class SlotContentBuilder {
  readonly #identity: (id: number) => Identity | undefined;
  readonly #names: TemplateNames;
  readonly #contents = new Map<string, SlotContent>();
  readonly #templates = new Map<string, GroupTemplate>();
  /** Patched contents, by the content patched and the signature of the endpoint's policies and named ports. */
  readonly #patched = new Map<SlotContent, Map<string, SlotContent>>();
  /** What each content patched in this commit changed, and from what. */
  readonly #changes = new Map<SlotContent, { from: SlotContent; change: ContentChange }>();
  /**
   * Patching: the identities patched (`of`) each rule targets, found once per rule, not once per content
   * patched (a namespace relabelled at full size patches ~90 contents whose policies share their rules).
   */
  #patchTargets: { of: readonly number[]; byRule: Map<CompiledRule, readonly number[]> } | undefined;

  /** A builder resolving egress named ports against the identities `identity` knows, naming templates by `names` (the slot table's). */
  constructor(identity: (id: number) => Identity | undefined, names: TemplateNames) {
    this.#identity = identity;
    this.#names = names;
  }

  /** The entries (without slot) of an endpoint the `applying` policies select; `pod` is the endpoint's pod. */
  contentOf(applying: readonly CompiledPolicy[], pod: PodInfo): SlotContent {
    const signature = contentSignature(applying, pod);
    let content = this.#contents.get(signature);
    if (!content) {
      const groups = this.#groups(applying, pod, undefined);
      content = { hash: contentHash(groups), groups };
      this.#contents.set(signature, content);
    }
    return content;
  }

  /**
   * What {@link SlotContentBuilder.contentOf} answers for an endpoint whose content was `current` and
   * whose policies, rules and pod are unchanged since, while only the identities in `changed` came or
   * went (those in `added` are the ones in use now): `current` without the groups of `changed`, plus
   * the groups of `added`. It visits only those identities, not every identity the rules target.
   * Answers `current` itself when nothing differs.
   *
   * @example
   * ```ts
   * builder.patched(slots.content(endpoint.contentKey), rules.applyingTo(key, namespace), pod, new Set([300, 301]), [301]);
   * ```
   */
  patched(current: SlotContent, applying: readonly CompiledPolicy[], pod: PodInfo, changed: ReadonlySet<number>, added: readonly number[]): SlotContent {
    const signature = contentSignature(applying, pod);
    let byPolicies = this.#patched.get(current);
    if (!byPolicies) {
      byPolicies = new Map();
      this.#patched.set(current, byPolicies);
    }
    let content = byPolicies.get(signature);
    if (!content) {
      const spliced = spliceGroups(current, changed, this.#groups(applying, pod, added));
      content = spliced.content;
      if (content !== current) this.#changes.set(content, { from: current, change: spliced.change });
      byPolicies.set(signature, content);
    }
    return content;
  }

  /**
   * The groups `to` drops from `from` and adds to it, or `undefined` when a group of one identity and
   * direction differs between them. Known without comparing for a content this builder patched from `from`.
   *
   * @example
   * ```ts
   * builder.change(slots.content(endpoint.contentKey), content); // { dropped: [], added: [group of 301] }
   * ```
   */
  change(from: SlotContent, to: SlotContent): ContentChange | undefined {
    const patch = this.#changes.get(to);
    if (patch?.from === from) return patch.change;
    const dropped: ContentGroup[] = [];
    const added: ContentGroup[] = [];
    let i = 0;
    let j = 0;
    while (i < from.groups.length || j < to.groups.length) {
      const before = from.groups[i];
      const after = to.groups[j];
      const order = !before ? 1 : !after ? -1 : groupOrder(before, after);
      if (order === 0) {
        if (before?.template.name !== after?.template.name) return undefined;
        i++;
        j++;
      } else if (order < 0) {
        dropped.push(before as ContentGroup);
        i++;
      } else {
        added.push(after as ContentGroup);
        j++;
      }
    }
    return { dropped, added };
  }

  /** The identities of `only` that `rule` targets. */
  #targetsAmong(rule: CompiledRule, only: readonly number[]): readonly number[] {
    if (this.#patchTargets?.of !== only) this.#patchTargets = { of: only, byRule: new Map() };
    let found = this.#patchTargets.byRule.get(rule);
    if (!found) {
      found = only.filter((id) => rule.identities.has(id));
      this.#patchTargets.byRule.set(rule, found);
    }
    return found;
  }

  /** The groups (sorted by direction, then identity) of the `applying` policies for `pod`, of every identity, or only of those in `only`. */
  #groups(applying: readonly CompiledPolicy[], pod: PodInfo, only: readonly number[] | undefined): SlotContent["groups"] {
    const targets = (rule: CompiledRule): Iterable<number> => (only ? this.#targetsAmong(rule, only) : rule.identities);
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
    for (const compiled of applying) {
      for (const rule of compiled.rules) {
        // Patching: a rule targeting none of the identities patched adds no group (nor its items, built per rule).
        if (only && this.#targetsAmong(rule, only).length === 0) continue;
        const { ports, peers } = rule.rule;
        if (rule.rule.direction === "Ingress") {
          // The destination is this pod: named ports resolve here, once.
          const part = ruleItems(rule, ports ? [...ports.numeric, ...ports.named.flatMap((ref) => resolveNamedPort(ref, pod.namedPorts))] : [ANY_PORT_RANGE]);
          if (peers) for (const identity of targets(rule)) add(identity, DIRECTION_INGRESS, part);
          else if (!only) add(IDENTITY_ANY, DIRECTION_INGRESS, part);
          continue;
        }
        // Egress: the destination is the remote, so named ports resolve per identity.
        const fixed = ruleItems(rule, ports ? ports.numeric : [ANY_PORT_RANGE]);
        if (!peers && !only) add(IDENTITY_ANY, DIRECTION_EGRESS, fixed);
        for (const id of targets(rule)) {
          const identity = this.#identity(id) as Identity;
          const named = (ports?.named ?? []).flatMap((ref) => resolveNamedPort(ref, identity.namedPorts));
          if (peers && named.length === 0) add(id, DIRECTION_EGRESS, fixed);
          else add(id, DIRECTION_EGRESS, ruleItems(rule, peers ? [...fixed.items.map((i) => i.port), ...named] : named));
        }
      }
    }
    const out: SlotContent["groups"] = [];
    for (const byIdentity of groups) {
      for (const { identity, direction, items, signature } of byIdentity.values()) {
        let template = this.#templates.get(signature);
        if (!template) {
          const { text, entries } = groupTemplate(items);
          template = { name: this.#names.name(text), text, entries };
          this.#templates.set(signature, template);
        }
        out.push({ identity, direction, template });
      }
    }
    return out.sort(groupOrder);
  }
}

type ContentGroup = SlotContent["groups"][number];

/** The order of groups in a content: by direction, then identity. */
/** What orders groups, and entries by their group. */
type GroupKey = Pick<ContentGroup, "identity" | "direction">;

const ownGroup = (group: ContentGroup): GroupKey => group;

function groupOrder(a: GroupKey, b: GroupKey): number {
  return a.direction - b.direction || a.identity - b.identity;
}

/** What the entries of an endpoint depend on besides the identities its rules target: its policies, and its pod through ingress named ports. */
function contentSignature(applying: readonly CompiledPolicy[], pod: PodInfo): string {
  return JSON.stringify([applying.map((compiled) => compiled.policy.key), pod.namedPorts]);
}

/** A group as an error message names it. */
function groupText(group: ContentGroup): string {
  return `${group.direction}/${group.identity}{${group.template.name}}`;
}

/** A 32-bit hash of a group: of its identity, direction and template name (murmur3's finalizer mixes them). */
function groupHash(group: ContentGroup): number {
  let h = Math.imul(group.identity, 0x9e3779b1) ^ group.direction;
  for (let i = 0; i < group.template.name.length; i++) h = Math.imul(h ^ group.template.name.charCodeAt(i), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The hash of a content of `groups`: the sum of their hashes modulo 2^32, `from` the hash of others.
 *
 * @example
 * ```ts
 * contentHash(added, contentHash(dropped, current.hash, -1)); // a patched content's hash
 * ```
 */
export function contentHash(groups: readonly ContentGroup[], from = 0, sign: 1 | -1 = 1): number {
  let hash = from;
  for (const group of groups) hash = (hash + sign * groupHash(group)) >>> 0;
  return hash;
}

/**
 * Whether two contents have the same groups: what equal hashes do not prove. Templates compare by name:
 * a template of another commit is another object, and a name means one text while a slot holds a group of it.
 *
 * @example
 * ```ts
 * sameGroups(slot.content, content); // true: the endpoint takes that slot
 * ```
 */
export function sameGroups(a: SlotContent, b: SlotContent): boolean {
  if (a === b) return true;
  if (a.hash !== b.hash || a.groups.length !== b.groups.length) return false;
  return a.groups.every((group, i) => {
    const other = b.groups[i] as ContentGroup;
    return group.identity === other.identity && group.direction === other.direction && group.template.name === other.template.name;
  });
}

/**
 * The index of the first of `items` (in group order: by direction, then identity) not before the group
 * of `direction` and `identity`; `groupOf` reads an item's group.
 */
function groupBound<T>(items: readonly T[], groupOf: (item: T) => GroupKey, direction: number, identity: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const group = groupOf(items[mid] as T);
    if (group.direction < direction || (group.direction === direction && group.identity < identity)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The index in `groups` (sorted) of the group of `identity` in `direction`, or -1 without one. */
function groupIndex(groups: readonly ContentGroup[], direction: Direction, identity: number): number {
  const at = groupBound(groups, ownGroup, direction, identity);
  return groups[at]?.identity === identity && groups[at]?.direction === direction ? at : -1;
}

/**
 * `current` without the groups of identities in `dropped`, plus `added` (sorted, none of them in
 * `current` unless dropped), and that change in groups. Its hash is `current`'s with the change's
 * groups taken out and put in, so only they are read, not every group kept.
 */
function spliceGroups(current: SlotContent, dropped: ReadonlySet<number>, added: readonly ContentGroup[]): { content: SlotContent; change: ContentChange } {
  const old = current.groups;
  // Where something changes, by index in `old`: few places, found by binary search, so the
  // unchanged runs between them are copied whole.
  const drops: number[] = [];
  for (const identity of dropped) {
    for (const direction of [DIRECTION_INGRESS, DIRECTION_EGRESS] as const) {
      const at = groupIndex(old, direction, identity);
      if (at >= 0) drops.push(at);
    }
  }
  const change = { dropped: drops.sort((a, b) => a - b).map((at) => old[at] as ContentGroup), added };
  if (added.length === 0 && drops.length === 0) return { content: current, change };
  const changes = [...drops.map((at) => ({ at, fresh: undefined })), ...added.map((fresh) => ({ at: groupBound(old, ownGroup, fresh.direction, fresh.identity), fresh }))];
  // At one index, an insertion goes before the group there, which may be dropped.
  changes.sort((a, b) => a.at - b.at || (a.fresh ? 0 : 1) - (b.fresh ? 0 : 1));
  const runs: ContentGroup[][] = [];
  // `old` up to `next` is in `runs`.
  let next = 0;
  for (const { at, fresh } of changes) {
    runs.push(old.slice(next, at));
    if (fresh) {
      const there = old[at];
      if (there && groupOrder(fresh, there) === 0 && !dropped.has(there.identity)) {
        throw new Error(`Cannot patch slot content: it has group ${groupText(there)} already`);
      }
      runs.push([fresh]);
      next = at;
    } else {
      next = at + 1;
    }
  }
  runs.push(old.slice(next));
  const groups = ([] as ContentGroup[]).concat(...runs);
  return { content: { hash: contentHash(added, contentHash(change.dropped, current.hash, -1)), groups }, change };
}
