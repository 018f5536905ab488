/**
 * Lookup emulation: answers a packet's verdict from a {@link DesiredState}
 * with exactly the lookups the BPF program does in the maps, so tests and
 * `palisade explain` can check and explain the compiled state without a
 * kernel. Longest-prefix matches are plain searches from the longest prefix
 * length down: slow, and obviously right.
 *
 * @module
 */
import {
  DIRECTION_EGRESS,
  DIRECTION_INGRESS,
  EP_AUDIT_ISOLATED_EGRESS,
  EP_AUDIT_ISOLATED_INGRESS,
  EP_ISOLATED_EGRESS,
  EP_ISOLATED_INGRESS,
  EP_NO_ANY_PEER_EGRESS,
  EP_NO_ANY_PEER_INGRESS,
  IDENTITY_ANY,
  IDENTITY_WORLD,
  IPCACHE_HOST,
  POLICY_FLAG_AUDIT_HTTP,
  POLICY_FLAG_AUDIT_HTTP_DENY,
  POLICY_FLAG_AUDIT_TCP_LIMITED,
  POLICY_FLAG_AUDIT_TCP_STRICT,
  POLICY_FLAG_HTTP,
  POLICY_FLAG_HTTP_DENY,
  POLICY_FLAG_TCP_LIMITED,
  POLICY_FLAG_TCP_STRICT,
  policyKeyString,
  PROTOCOL_NUMBERS,
  ruleRefOrder,
  VERDICT_ALLOW,
  VERDICT_DENY,
} from "./desired-state.ts";
import type { DesiredState, Direction, EndpointState, IpcacheEntry, PolicyKey, PolicyValue, RuleRef } from "./desired-state.ts";
import { addressBits, cidrOf, formatCidr, parseIp } from "./ip.ts";
import type { IpAddress } from "./ip.ts";
import { PORT_BITS, portPrefixOf } from "./port-ranges.ts";
import type { Packet, PacketProtocol, World } from "./world.ts";

/** One direction's question: may `remoteIp` talk to (ingress) or be reached by (egress) the endpoint? */
export interface LookupQuery {
  /** The endpoint's pod key, `namespace/name`. */
  endpoint: string;
  direction: Direction;
  remoteIp: string;
  protocol: PacketProtocol;
  /** Destination port; ignored (0) for ICMP. */
  port: number;
}

/** Why a direction got its verdict (the datapath's reasons for a new flow). */
export type LookupReason = "no-endpoint" | "host" | "policy-allow" | "policy-deny" | "default-deny" | "not-isolated";

/** A verdict, the rule behind it (0 if none) and why. */
export interface Verdict {
  allowed: boolean;
  ruleId: number;
  reason: LookupReason;
  /** A TCP flow allowed only by strict entries: the datapath admits it by a SYN alone and drops invalid flags. */
  tcpStrict: boolean;
  /**
   * A TCP flow allowed only by entries with connection limits: the datapath charges its new connections
   * to rule `ruleId`, per source address, and refuses those over that rule's limits.
   */
  tcpLimited: boolean;
  /** For an allowed TCP flow whose requests HTTP rules judge: the rules that judge them. */
  http?: HttpJudges;
}

/** The rules judging the requests of an allowed flow, by id, in reference order. */
export interface HttpJudges {
  /** A request must match an `http` entry of one of these, or is refused; undefined: an allow without `http` admits every request. */
  allows: number[] | undefined;
  /** A request matching an `http` entry of one of these is refused. */
  denies: number[];
}

/** The enforced verdict of one direction, the remote's identity, and the audit verdict (Audit-mode policies counted too). */
export interface LookupResult extends Verdict {
  remoteIdentity: number;
  audit: Verdict;
  /** Whether the datapath steers the flow to the node's proxy: allowed, and HTTP rules judge its requests for either verdict. */
  proxied: boolean;
}

/** A {@link LookupResult} and the endpoint it was checked at. */
export interface EndpointLookupResult extends LookupResult {
  endpoint: string;
}

/** A packet's verdict: egress at the source pod's endpoint, ingress at the destination's, where they exist. */
export interface PacketExplanation {
  allowed: boolean;
  /** Whether the packet would pass with Audit-mode policies enforced too. */
  auditAllowed: boolean;
  egress?: EndpointLookupResult;
  ingress?: EndpointLookupResult;
}

/**
 * The ipcache entry the kernel's LPM trie returns for an address, if any.
 *
 * @example
 * ```ts
 * lookupIpcache(state, "10.1.2.3")?.value; // e.g. { identity: 300, flags: 0 } of 10.1.0.0/16
 * ```
 */
export function lookupIpcache(state: DesiredState, ip: string | IpAddress): IpcacheEntry | undefined {
  const address = typeof ip === "string" ? parseIp(ip) : ip;
  for (let length = addressBits(address.family); length >= 0; length--) {
    const entry = state.ipcache.get(formatCidr(cidrOf(address, length)));
    if (entry) return entry;
  }
  return undefined;
}

/**
 * The policy value the kernel's LPM trie returns for a full key (exact
 * port), if any: the longest of the port prefixes, then any port of the
 * protocol, then the any-protocol entry.
 *
 * @example
 * ```ts
 * lookupPolicy(state, { slot: 3, identity: 0, direction: DIRECTION_INGRESS, protocol: 6, port: 80 });
 * ```
 */
export function lookupPolicy(state: Pick<DesiredState, "policy">, key: Omit<PolicyKey, "portPrefixLen">): PolicyValue | undefined {
  for (let length = PORT_BITS; length >= 0; length--) {
    const prefix = portPrefixOf(key.port, length);
    const entry = state.policy.get(policyKeyString({ ...key, port: prefix.port, portPrefixLen: length }));
    if (entry) return entry.value;
  }
  const anyProtocol = state.policy.get(policyKeyString({ ...key, protocol: 0, port: 0, portPrefixLen: 0 }));
  return anyProtocol?.value;
}

/** The union of rule id lists, in reference order. */
function mergeRuleIds(lists: number[][], rules: ReadonlyMap<number, RuleRef>): number[] {
  const ordered = [...new Set(lists.flat())].map((id) => {
    const ref = rules.get(id);
    return { id, order: ref ? ruleRefOrder(ref) : "" };
  });
  return ordered.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : a.id - b.id)).map(({ id }) => id);
}

function combine(values: (PolicyValue | undefined)[], audit: boolean, isolated: boolean, tcp: boolean, rules: ReadonlyMap<number, RuleRef>): Verdict {
  const verdictOf = (v: PolicyValue | undefined): number | undefined => (audit ? v?.auditVerdict : v?.verdict);
  const ruleOf = (v: PolicyValue): number => (audit ? v.auditRuleId : v.ruleId);
  const strictFlag = audit ? POLICY_FLAG_AUDIT_TCP_STRICT : POLICY_FLAG_TCP_STRICT;
  const limitedFlag = audit ? POLICY_FLAG_AUDIT_TCP_LIMITED : POLICY_FLAG_TCP_LIMITED;
  const httpFlag = audit ? POLICY_FLAG_AUDIT_HTTP : POLICY_FLAG_HTTP;
  const httpDenyFlag = audit ? POLICY_FLAG_AUDIT_HTTP_DENY : POLICY_FLAG_HTTP_DENY;
  // The identity's value is consulted before the any-peer value, as the datapath does.
  for (const value of values) {
    if (value && verdictOf(value) === VERDICT_DENY) return { allowed: false, ruleId: ruleOf(value), reason: "policy-deny", tcpStrict: false, tcpLimited: false };
  }
  const allowing = values.filter((value): value is PolicyValue => value !== undefined && verdictOf(value) === VERDICT_ALLOW);
  const [first] = allowing;
  if (first) {
    // Strict only if every value that allows is: an allow without the flag admits the flow as it is.
    const every = (flag: number): boolean => tcp && allowing.every((value) => (value.flags & flag) !== 0);
    const verdict: Verdict = { allowed: true, ruleId: ruleOf(first), reason: "policy-allow", tcpStrict: every(strictFlag), tcpLimited: every(limitedFlag) };
    // HTTP Deny rules count wherever they are found, allowing value or not.
    const denying = values.filter((value): value is PolicyValue => tcp && value !== undefined && (value.flags & httpDenyFlag) !== 0);
    if (every(httpFlag) || denying.length > 0) {
      verdict.http = {
        allows: every(httpFlag) ? mergeRuleIds(allowing.map((value) => (audit ? value.http?.auditAllows : value.http?.allows) ?? []), rules) : undefined,
        denies: mergeRuleIds(denying.map((value) => (audit ? value.http?.auditDenies : value.http?.denies) ?? []), rules),
      };
    }
    return verdict;
  }
  if (isolated) return { allowed: false, ruleId: 0, reason: "default-deny", tcpStrict: false, tcpLimited: false };
  return { allowed: true, ruleId: 0, reason: "not-isolated", tcpStrict: false, tcpLimited: false };
}

/** One direction's question at a known endpoint, about a remote of a known identity. */
export interface EndpointQuery {
  direction: Direction;
  remoteIdentity: number;
  protocol: PacketProtocol;
  /** Whether the remote is IPv4 (for ICMP's protocol number). */
  family: 4 | 6;
  port: number;
}

/**
 * One direction's verdict at an endpoint for a remote whose identity is known (not the node: that one
 * passes ingress before any policy): the two policy lookups and the isolation flags, as the datapath
 * does. The node's proxy asks it too, from the entries the agent publishes.
 */
export function lookupEndpointVerdict(state: Pick<DesiredState, "policy" | "rules">, endpoint: EndpointState, q: EndpointQuery): LookupResult {
  const isIcmp = q.protocol === "ICMP";
  const protocol = isIcmp ? (q.family === 4 ? PROTOCOL_NUMBERS.ICMP : PROTOCOL_NUMBERS.ICMPV6) : PROTOCOL_NUMBERS[q.protocol];
  const key = { slot: endpoint.slot, direction: q.direction, protocol, port: isIcmp ? 0 : q.port };
  const ingress = q.direction === DIRECTION_INGRESS;
  const isolated = (endpoint.flags & (ingress ? EP_ISOLATED_INGRESS : EP_ISOLATED_EGRESS)) !== 0;
  const auditIsolated = (endpoint.flags & (ingress ? EP_AUDIT_ISOLATED_INGRESS : EP_AUDIT_ISOLATED_EGRESS)) !== 0;
  // A direction isolated in neither verdict has no entries (no policy of it applies), one flagged
  // EP_NO_ANY_PEER_* no any-peer entry: not looked up.
  const noAnyPeer = (endpoint.flags & (ingress ? EP_NO_ANY_PEER_INGRESS : EP_NO_ANY_PEER_EGRESS)) !== 0;
  const values =
    isolated || auditIsolated
      ? [lookupPolicy(state, { ...key, identity: q.remoteIdentity }), noAnyPeer ? undefined : lookupPolicy(state, { ...key, identity: IDENTITY_ANY })]
      : [undefined, undefined];
  const tcp = q.protocol === "TCP";
  const enforced = combine(values, false, isolated, tcp, state.rules);
  const audit = combine(values, true, auditIsolated, tcp, state.rules);
  const proxied = enforced.allowed && (enforced.http !== undefined || (audit.allowed && audit.http !== undefined));
  return { ...enforced, remoteIdentity: q.remoteIdentity, audit, proxied };
}

/**
 * One direction's verdict for a new flow, computed from the state exactly as
 * the datapath does: endpoint, ipcache, two policy lookups, isolation flags.
 *
 * @example
 * ```ts
 * lookupVerdict(state, { endpoint: "x/a", direction: DIRECTION_INGRESS, remoteIp: "10.0.0.2", protocol: "TCP", port: 80 });
 * // { allowed: true, reason: "policy-allow", ruleId: 4, remoteIdentity: 257, audit: { ... }, proxied: false }
 * ```
 */
export function lookupVerdict(state: DesiredState, q: LookupQuery): LookupResult {
  const endpoint = state.endpoints.get(q.endpoint);
  if (!endpoint) {
    const verdict: Verdict = { allowed: false, ruleId: 0, reason: "no-endpoint", tcpStrict: false, tcpLimited: false };
    return { ...verdict, remoteIdentity: 0, audit: verdict, proxied: false };
  }
  const remote = parseIp(q.remoteIp);
  const ipcache = lookupIpcache(state, remote);
  const remoteIdentity = ipcache?.value.identity ?? IDENTITY_WORLD;
  if (q.direction === DIRECTION_INGRESS && ((ipcache?.value.flags ?? 0) & IPCACHE_HOST) !== 0) {
    const verdict: Verdict = { allowed: true, ruleId: 0, reason: "host", tcpStrict: false, tcpLimited: false };
    return { ...verdict, remoteIdentity, audit: verdict, proxied: false };
  }
  return lookupEndpointVerdict(state, endpoint, { direction: q.direction, remoteIdentity, protocol: q.protocol, family: remote.family, port: q.port });
}

/** The key of the pod owning an address: the smallest pod key among pods having it, as the compiler picks. */
function podWithIp(world: World, ip: IpAddress): string | undefined {
  let found: string | undefined;
  for (const [key, pod] of world.pods) {
    const has = pod.ips.some((text) => {
      const address = parseIp(text);
      return address.family === ip.family && address.value === ip.value;
    });
    if (has && (found === undefined || key < found)) found = key;
  }
  return found;
}

/**
 * A packet's verdict with both its checks: egress at the source endpoint if
 * the source IP is a pod's with an endpoint in the state, ingress at the
 * destination endpoint likewise. A pod's packets to itself stay inside the
 * pod (loopback) and are never checked.
 *
 * @example
 * ```ts
 * explainPacket(state, world, { src: { ip: "10.0.0.1" }, dst: { ip: "10.0.0.2" }, protocol: "TCP", port: 80 });
 * // { allowed: false, auditAllowed: false, ingress: { endpoint: "x/b", reason: "default-deny", ... }, egress: { ... } }
 * ```
 */
export function explainPacket(state: DesiredState, world: World, packet: Packet): PacketExplanation {
  const srcPod = podWithIp(world, parseIp(packet.src.ip));
  const dstPod = podWithIp(world, parseIp(packet.dst.ip));
  const check = (endpoint: string | undefined, remoteIp: string, direction: Direction): EndpointLookupResult | undefined => {
    if (endpoint === undefined || endpoint === (direction === DIRECTION_EGRESS ? dstPod : srcPod)) return undefined;
    if (!state.endpoints.has(endpoint)) return undefined;
    return { endpoint, ...lookupVerdict(state, { endpoint, direction, remoteIp, protocol: packet.protocol, port: packet.port }) };
  };
  const egress = check(srcPod, packet.dst.ip, DIRECTION_EGRESS);
  const ingress = check(dstPod, packet.src.ip, DIRECTION_INGRESS);
  const out: PacketExplanation = {
    allowed: (egress?.allowed ?? true) && (ingress?.allowed ?? true),
    auditAllowed: (egress?.audit.allowed ?? true) && (ingress?.audit.allowed ?? true),
  };
  if (egress) out.egress = egress;
  if (ingress) out.ingress = ingress;
  return out;
}
