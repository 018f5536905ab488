/**
 * Desired datapath state: what the compiler wants the kernel maps to hold,
 * as plain data, and the diffs between two such states. The datapath layer
 * turns a {@link StateDiff} into map writes; the lookup emulation in
 * `lookup.ts` answers verdicts from a {@link DesiredState} exactly as the BPF
 * program does from the maps. Mirrors `bpf/include/palisade_abi.h`; addresses
 * travel as the bytes the kernel keys hold.
 *
 * @module
 */
import { formatIp, ipFromBytes, ipToBytes, networkAddress } from "./ip.ts";
import type { Cidr, IpFamily } from "./ip.ts";
import type { HttpRule, TlsRule } from "./api-types.ts";

/** Reserved identities (PAL_ID_* in the ABI header). */
export const IDENTITY_ANY = 0;
export const IDENTITY_HOST = 1;
export const IDENTITY_WORLD = 2;
export const FIRST_ALLOCATED_IDENTITY = 256;

/**
 * The first identity number an agent gives on its own, to a key whose
 * PalisadeIdentity object the API cannot hold (a pod with more labels than
 * the CRD allows) or that is derived from addresses alone: such numbers mean
 * something on one node only.
 */
export const FIRST_NODE_LOCAL_IDENTITY = 0xf000_0000;

/**
 * An identity number as the agent holds it in memory, from the kernel's: a
 * node-local number (from {@link FIRST_NODE_LOCAL_IDENTITY}, above V8's small
 * integers, so a 16-byte heap number wherever one is stored: some 10 MB for
 * 100k CIDRs) is kept as its offset from 2^32, a negative small integer; any
 * other is itself. The datapath's codecs convert at the map boundary
 * ({@link kernelIdentity} the other way), so above them every number is in
 * this form.
 *
 * @example
 * ```ts
 * identityInMemory(0xf000_0000); // -268435456
 * identityInMemory(300); // 300
 * ```
 */
export function identityInMemory(kernel: number): number {
  // `| 0` is the offset from 2^32 and always yields a small integer; a subtraction may yield a heap number of the same value.
  return kernel >= FIRST_NODE_LOCAL_IDENTITY ? kernel | 0 : kernel;
}

/**
 * The kernel's identity number of one held in memory ({@link identityInMemory}).
 *
 * @example
 * ```ts
 * kernelIdentity(-268435456); // 0xf000_0000
 * kernelIdentity(300); // 300
 * ```
 */
export function kernelIdentity(memory: number): number {
  return memory < 0 ? memory >>> 0 : memory;
}

/** Directions from the endpoint's point of view (PAL_DIR_*). */
export const DIRECTION_INGRESS = 0;
export const DIRECTION_EGRESS = 1;
export type Direction = typeof DIRECTION_INGRESS | typeof DIRECTION_EGRESS;

/** IANA protocol numbers used in keys; 0 in a policy key means any protocol. */
export const PROTOCOL_NUMBERS = { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132, ICMPV6: 58 } as const;

/** Policy verdicts (PAL_POLICY_*). */
export const VERDICT_NONE = 0;
export const VERDICT_ALLOW = 1;
export const VERDICT_DENY = 2;
export type PolicyVerdict = typeof VERDICT_NONE | typeof VERDICT_ALLOW | typeof VERDICT_DENY;

/** Endpoint flags (PAL_EP_*). */
export const EP_ISOLATED_INGRESS = 1 << 0;
export const EP_ISOLATED_EGRESS = 1 << 1;
export const EP_AUDIT_ISOLATED_INGRESS = 1 << 2;
export const EP_AUDIT_ISOLATED_EGRESS = 1 << 3;
/** Set for an isolated direction whose slot holds no any-peer entry: the datapath skips that lookup. */
export const EP_NO_ANY_PEER_INGRESS = 1 << 4;
export const EP_NO_ANY_PEER_EGRESS = 1 << 5;

/** ipcache flags (PAL_IPCACHE_*). */
export const IPCACHE_HOST = 1 << 0;

/** An ipcache key: a prefix as family, network address bytes (4 or 16, host bits zero) and prefix length in address bits. */
export interface IpcacheKey {
  family: IpFamily;
  address: Uint8Array;
  prefixLen: number;
}

/** An ipcache value: the identity of the covered addresses and IPCACHE_* flags. */
export interface IpcacheValue {
  identity: number;
  flags: number;
}

/** One ipcache entry. */
export interface IpcacheEntry {
  key: IpcacheKey;
  value: IpcacheValue;
}

/**
 * A policy map key. `protocol` 0 = any protocol (then `port` and
 * `portPrefixLen` are 0); `portPrefixLen` 0 = any port of `protocol`,
 * 16 = exactly `port`, n = ports sharing the first n bits of `port`.
 */
export interface PolicyKey {
  slot: number;
  identity: number;
  direction: Direction;
  protocol: number;
  port: number;
  portPrefixLen: number;
}

/** Policy value flag: every Enforce-mode Allow rule behind the enforced verdict has `tcp.strict`. */
export const POLICY_FLAG_TCP_STRICT = 1;
/** Policy value flag: every Allow rule behind the audit verdict (Audit mode included) has `tcp.strict`. */
export const POLICY_FLAG_AUDIT_TCP_STRICT = 2;

/**
 * Policy value flag: every Enforce-mode Allow rule behind the enforced verdict has a TCP connection limit
 * (`tcp.maxConnectionsPerSource` or `tcp.newConnectionsPerSecond`); the entry's `ruleId` is charged.
 */
export const POLICY_FLAG_TCP_LIMITED = 4;
/** Policy value flag: every Allow rule behind the audit verdict (Audit mode included) has a TCP connection limit. */
export const POLICY_FLAG_AUDIT_TCP_LIMITED = 8;
/**
 * Policy value flag: every Enforce-mode Allow rule behind the enforced verdict has `http` or `tls`, so
 * the allow holds request by request (or by the connection's ClientHello) and the flow goes to the
 * node's proxy, which judges it (when the verdict allows). The kernel ANDs it over the allowing entries
 * of a lookup, like the TCP flags. (Named for HTTP, the first rules the proxy judged.)
 */
export const POLICY_FLAG_HTTP = 16;
/**
 * Policy value flag: an Enforce-mode Deny rule with `http` or `tls` covers this entry, so the flow is
 * judged by the proxy whatever allows it. The kernel ORs it over every entry of a lookup.
 */
export const POLICY_FLAG_HTTP_DENY = 32;
/** {@link POLICY_FLAG_HTTP} for the audit verdict (Audit-mode rules included). */
export const POLICY_FLAG_AUDIT_HTTP = 64;
/** {@link POLICY_FLAG_HTTP_DENY} for the audit verdict (Audit-mode rules included). */
export const POLICY_FLAG_AUDIT_HTTP_DENY = 128;

/**
 * The TCP connection limits of one rule, as the datapath keeps them by rule id (`pal_tcp_limits`).
 * 0 = no limit of that kind.
 */
export interface TcpLimits {
  /** Concurrent connections per source address (`tcp.maxConnectionsPerSource`). */
  maxConnections: number;
  /** New connections per second per source address (`tcp.newConnectionsPerSecond.average`). */
  rate: number;
  /** Tokens of the bucket (`tcp.newConnectionsPerSecond.burst`); 0 when `rate` is. */
  burst: number;
}

/** Whether two rules' limits are the same. */
export function sameTcpLimits(a: TcpLimits, b: TcpLimits): boolean {
  return a.maxConnections === b.maxConnections && a.rate === b.rate && a.burst === b.burst;
}

/** A policy map value: the combination of every rule whose key prefix covers this entry. */
export interface PolicyValue {
  verdict: PolicyVerdict;
  auditVerdict: PolicyVerdict;
  ruleId: number;
  auditRuleId: number;
  /** POLICY_FLAG_* bits. */
  flags: number;
  /** The rules behind the proxy's flags (HTTP_*), when the value has any: what the proxy judges by. Not in the kernel. */
  http?: PolicyHttp;
}

/**
 * The rules whose `http` entries or `tls` server names judge an entry's flows (requests, or TLS
 * connections by their ClientHello), by rule id, each list in reference order. `allows` are meaningful
 * when the value has {@link POLICY_FLAG_HTTP} (every Allow rule behind the allow has `http` or `tls`: a
 * request or connection must match one of theirs), `denies` are the Deny rules with `http` or `tls`
 * covering the entry (what matches one of theirs is refused); `audit*` the same for the audit verdict.
 */
export interface PolicyHttp {
  allows: number[];
  denies: number[];
  auditAllows: number[];
  auditDenies: number[];
}

/** One policy map entry. */
export interface PolicyEntry {
  key: PolicyKey;
  value: PolicyValue;
}

/** The state of one endpoint (a local pod), keyed by pod key in {@link DesiredState.endpoints}. */
export interface EndpointState {
  endpointId: number;
  identity: number;
  slot: number;
  flags: number;
}

/**
 * Whether two endpoint states are the same.
 *
 * @example
 * ```ts
 * sameEndpointState(before, after); // false once the endpoint switched slots
 * ```
 */
export function sameEndpointState(a: EndpointState, b: EndpointState): boolean {
  return a.endpointId === b.endpointId && a.identity === b.identity && a.slot === b.slot && a.flags === b.flags;
}

/** What a rule id stands for, so verdicts can name the policy and rule behind them. */
export interface RuleRef {
  kind: "NetworkPolicy" | "EBPFNetworkPolicy";
  namespace: string;
  name: string;
  direction: "Ingress" | "Egress";
  /** Index of the rule in `spec.ingress` or `spec.egress`. */
  index: number;
  action: "Allow" | "Deny";
  mode: "Enforce" | "Audit";
  /** The rule's `http` entries, when it has them: what the node's proxy judges requests by. */
  http?: HttpRule[];
  /** The rule's `tls`, when it has it: what the node's proxy judges TLS connections by. */
  tls?: TlsRule;
}

/** The sort key of a rule's reference (kind, namespace, name, direction, index): among rules deciding one thing, the first in this order names it. */
export function ruleRefOrder(ref: Pick<RuleRef, "kind" | "namespace" | "name" | "direction" | "index">): string {
  // Joined: one flat string, where a template leaves a chain of concatenations (~190 bytes more per rule, which keeps it).
  return [ref.kind, ref.namespace, ref.name, ref.direction, String(ref.index).padStart(8, "0")].join("\u0000");
}

/** What an identity stands for, for explanations. */
export interface IdentityInfo {
  id: number;
  /** Human-readable, e.g. `pod x/a (ns labels …, pod labels …)` or `cidr 10.0.0.0/8`. */
  description: string;
}

/** The whole desired state. Ipcache entries are keyed by {@link ipcacheKeyString}, policy entries by {@link policyKeyString}. */
export interface DesiredState extends DesiredMaps {
  rules: Map<number, RuleRef>;
  identities: Map<number, IdentityInfo>;
}

/** What of the {@link DesiredState} the maps hold: all a full sync writes. */
export interface DesiredMaps {
  ipcache: Map<string, IpcacheEntry>;
  endpoints: Map<string, EndpointState>;
  policy: Map<string, PolicyEntry>;
  /** The limits of every rule with TCP connection limits, by rule id: what `pal_tcp_limits` holds. */
  tcpLimits: Map<number, TcpLimits>;
}

/**
 * The change between two desired states. Applied in this order so that a
 * packet sees either the old or the new policy of an endpoint, never a mix:
 * TCP limit upserts (a limited entry finds its rule's limits), policy upserts
 * (new slots, and the entries of new identities in slots in use), endpoint
 * upserts (switch to them), ipcache upserts (only now can a packet carry a new
 * identity), ipcache removals (and no longer a gone one), endpoint removals,
 * policy removals (old slots, and the entries of gone identities in slots in
 * use), TCP limit removals. A slot in use changes only in entries of such
 * identities, so its change is atomic as it is.
 */
export interface StateDiff {
  tcpLimitUpserts: [ruleId: number, limits: TcpLimits][];
  policyUpserts: PolicyEntry[];
  endpointUpserts: [podKey: string, state: EndpointState][];
  ipcacheUpserts: IpcacheEntry[];
  ipcacheRemovals: IpcacheKey[];
  endpointRemovals: string[];
  policyRemovals: PolicyKey[];
  tcpLimitRemovals: number[];
}

/** A stable string for a policy key, for maps and sorting. */
export function policyKeyString(k: PolicyKey): string {
  return `${k.slot}/${k.identity}/${k.direction}/${k.protocol}/${k.port}/${k.portPrefixLen}`;
}

/**
 * The ipcache key of a prefix.
 *
 * @example
 * ```ts
 * ipcacheKeyOf(parseCidr("10.0.0.0/8")); // { family: 4, address: Uint8Array [10, 0, 0, 0], prefixLen: 8 }
 * ```
 */
export function ipcacheKeyOf(cidr: Cidr): IpcacheKey {
  return { family: cidr.family, address: ipToBytes(networkAddress(cidr)), prefixLen: cidr.prefixLen };
}

/**
 * The canonical text of an ipcache key, for maps, sorting and people.
 *
 * @example
 * ```ts
 * ipcacheKeyString(ipcacheKeyOf(parseCidr("fd00::1/128"))); // "fd00::1/128"
 * ```
 */
export function ipcacheKeyString(key: IpcacheKey): string {
  return [formatIp(ipFromBytes(key.address)), key.prefixLen].join("/");
}

/** An empty diff. */
export function emptyDiff(): StateDiff {
  return {
    policyUpserts: [],
    endpointUpserts: [],
    ipcacheUpserts: [],
    ipcacheRemovals: [],
    endpointRemovals: [],
    policyRemovals: [],
    tcpLimitRemovals: [],
    tcpLimitUpserts: [],
  };
}
