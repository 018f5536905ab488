/**
 * A validated policy in the compiler's terms: defaults applied (namespace,
 * policy types, action, mode, protocol), CIDRs parsed, port ranges cut into
 * the aligned prefixes the policy trie matches. Validation (`validatePolicy`,
 * through `buildWorld`) has already refused every malformed policy, so
 * normalizing checks nothing again: it only converts.
 *
 * @module
 */
import type {
  AnyPolicy,
  EBPFEgressRule,
  EBPFIngressRule,
  HttpRule,
  LabelSelector,
  PolicyMode,
  PolicyPeer,
  PolicyPort,
  PolicyProtocol,
  PolicyType,
  RuleAction,
  TcpRule,
  TlsRule,
} from "./api-types.ts";
import { PROTOCOL_NUMBERS } from "./desired-state.ts";
import type { TcpLimits } from "./desired-state.ts";
import { formatCidr, IpParseError, parseCidr } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import { MAX_PORT, portRangePrefixes, PortRangeError } from "./port-ranges.ts";
import type { PortPrefix } from "./port-ranges.ts";
import { SharedValues } from "./shared-values.ts";
import { PolicyError } from "./validate.ts";

/** The kind of a policy object. */
export type PolicyKind = AnyPolicy["kind"];

/** Ports `lo` to `hi` of one protocol, and the prefixes covering them; protocol 0 = any protocol and port. */
export interface PortRange {
  protocol: number;
  lo: number;
  hi: number;
  prefixes: readonly PortPrefix[];
}

/** A named port of a rule, resolved against the destination pod's container ports. */
export interface NamedPortRef {
  name: string;
  protocol: PolicyProtocol;
}

/** The ports of a rule: numeric ranges (an absent port is every port of its protocol) and named ports. */
export interface RulePorts {
  numeric: PortRange[];
  named: NamedPortRef[];
}

/** A peer selecting pods (either selector may be absent). */
export interface SelectorPeer {
  podSelector: LabelSelector | undefined;
  namespaceSelector: LabelSelector | undefined;
}

/** A parsed ipBlock: its CIDR and excepts. */
export interface IpBlock {
  readonly cidr: Cidr;
  readonly except: readonly Cidr[];
}

/**
 * A peer of a rule: pods by selectors, or addresses by a parsed ipBlock,
 * held as its bare CIDR when it has no excepts, as nearly every CIDR of an
 * allow-list (a peer object and a block object would cost ~90 bytes per
 * CIDR, 10 MB at 100k). Tell them apart with {@link isSelectorPeer}, read a
 * block with {@link ipBlockOf}.
 */
export type NormalizedPeer = SelectorPeer | IpBlock | Cidr;

/**
 * Whether a peer selects pods (else it is an ipBlock).
 *
 * @example
 * ```ts
 * isSelectorPeer({ podSelector: { matchLabels: { app: "web" } }, namespaceSelector: undefined }); // true
 * isSelectorPeer(blockPeer(parseCidr("10.0.0.0/8"), NO_EXCEPT)); // false
 * ```
 */
export function isSelectorPeer(peer: NormalizedPeer): peer is SelectorPeer {
  return "podSelector" in peer;
}

/**
 * The peer of an ipBlock: the CIDR itself when there is no except.
 *
 * @example
 * ```ts
 * blockPeer(parseCidr("10.0.0.0/8"), NO_EXCEPT); // the CIDR
 * ```
 */
export function blockPeer(cidr: Cidr, except: readonly Cidr[]): IpBlock | Cidr {
  return except.length === 0 ? cidr : { cidr, except };
}

/**
 * The ipBlock of a peer that is not a selector peer.
 *
 * @example
 * ```ts
 * ipBlockOf(parseCidr("10.0.0.0/8")).except; // NO_EXCEPT
 * ```
 */
export function ipBlockOf(peer: IpBlock | Cidr): IpBlock {
  return "cidr" in peer ? peer : { cidr: peer, except: NO_EXCEPT };
}

/** One rule of a policy, of one direction. */
export interface NormalizedRule {
  direction: PolicyType;
  /** Index of the rule in `spec.ingress` or `spec.egress`. */
  index: number;
  action: RuleAction;
  /** Absent = any remote. */
  peers: NormalizedPeer[] | undefined;
  /** Absent = every protocol and port. */
  ports: RulePorts | undefined;
  /** `tcp.strict` of an EBPFNetworkPolicy Allow rule: its TCP flows open only by a SYN and keep valid flags. */
  tcpStrict: boolean;
  /** `tcp.maxConnectionsPerSource` and `tcp.newConnectionsPerSecond` of an EBPFNetworkPolicy Allow rule; undefined when it has neither. */
  tcpLimits: TcpLimits | undefined;
  /** `http` of an EBPFNetworkPolicy rule: the requests it allows (Allow) or refuses (Deny) on its TCP ports. */
  http: HttpRule[] | undefined;
  /** `tls` of an EBPFNetworkPolicy rule: the TLS connections it allows (Allow) or refuses (Deny) on its TCP ports. */
  tls: TlsRule | undefined;
}

/**
 * A policy's ipBlock cidrs and excepts, each once: the canonical texts and
 * their parsed forms at the same index. Two arrays, not a map by text: a map
 * entry costs ~35 bytes more per prefix (3.5 MB at 100k).
 */
export interface PolicyPrefixes {
  readonly texts: readonly string[];
  readonly cidrs: readonly Cidr[];
}

/** A policy as the compiler reads it. */
export interface NormalizedPolicy {
  /** `kind/namespace/name`, see {@link policyObjectKey}. */
  key: string;
  kind: PolicyKind;
  namespace: string;
  name: string;
  mode: PolicyMode;
  /** The pods of `namespace` the policy applies to. */
  selector: LabelSelector;
  /** The directions it isolates, defaults applied. */
  types: PolicyType[];
  /** The rules of the directions in `types`; rules of other directions do nothing. */
  rules: NormalizedRule[];
  /** Every ipBlock cidr and except, once each. */
  prefixes: PolicyPrefixes;
}

const PORTS = new SharedValues<RulePorts>();
const TYPES = new SharedValues<PolicyType[]>();

/**
 * Equal ports of rules as one frozen value, lists of their exact size: the scale world's 10k policies have a few
 * distinct ones in their 14k rules (2.8 MB of copies).
 */
function sharedPorts(ports: RulePorts): RulePorts {
  return PORTS.shared(JSON.stringify(ports), () => frozenCopy(ports));
}

const SELECTORS = new SharedValues<LabelSelector>();
const PEERS = new SharedValues<SelectorPeer>();

/** Equal selectors of policies as one frozen value (the scale world's 10k policies select by a few hundred). */
function sharedSelector(selector: LabelSelector): LabelSelector {
  return SELECTORS.shared(JSON.stringify(selector), () => frozenCopy(selector));
}

/** Equal selector peers of rules as one frozen value: JSON leaves out an absent selector, so the key lists both. */
function sharedPeer(podSelector: LabelSelector | undefined, namespaceSelector: LabelSelector | undefined): SelectorPeer {
  return PEERS.shared(JSON.stringify([podSelector ?? null, namespaceSelector ?? null]), () => frozenCopy({ podSelector, namespaceSelector }));
}

/** A copy of `value` frozen with everything in it, to share: the caller's objects stay its own, unfrozen. */
function frozenCopy<T>(value: T): T {
  const freeze = (inner: unknown): void => {
    if (typeof inner !== "object" || inner === null) return;
    for (const field of Object.values(inner)) freeze(field);
    Object.freeze(inner);
  };
  const copy = structuredClone(value);
  freeze(copy);
  return copy;
}

/** Equal directions of policies as one frozen list (0.5 MB of copies at scale). */
function sharedTypes(types: PolicyType[]): PolicyType[] {
  return TYPES.shared(types.join(), () => types);
}

/**
 * The prefixes of a policy without ipBlocks: shared, since most policies have
 * none (9k of the scale world's 10k, whose own empty pair cost ~100 bytes each).
 */
export const NO_PREFIXES: PolicyPrefixes = Object.freeze({ texts: Object.freeze([]), cidrs: Object.freeze([]) });

/** The excepts of an ipBlock without any: shared, since allow-lists have 100k such blocks. */
export const NO_EXCEPT: readonly Cidr[] = Object.freeze([]);

/** Every protocol and port: what a rule without ports allows. */
export const ANY_PORT_RANGE: PortRange = { protocol: 0, lo: 0, hi: MAX_PORT, prefixes: [{ port: 0, prefixLen: 0 }] };

/**
 * The connection limits of a rule's `tcp`, as the datapath keeps them; undefined when it sets none.
 *
 * @example
 * ```ts
 * tcpLimitsOf({ maxConnectionsPerSource: 3 }); // { maxConnections: 3, rate: 0, burst: 0 }
 * ```
 */
export function tcpLimitsOf(tcp: TcpRule | undefined): TcpLimits | undefined {
  const maxConnections = tcp?.maxConnectionsPerSource ?? 0;
  const rate = tcp?.newConnectionsPerSecond?.average ?? 0;
  if (maxConnections === 0 && rate === 0) return undefined;
  return { maxConnections, rate, burst: rate === 0 ? 0 : (tcp?.newConnectionsPerSecond?.burst ?? rate) };
}

/**
 * The key of a policy object among the compiler's policies: one flat string.
 * A template literal makes a tree of concatenations that V8 keeps as it is
 * (then flattened beside it when hashed), about 70 bytes more per key, and
 * the agent holds 10k policies' keys in several maps at scale.
 *
 * @example
 * ```ts
 * policyObjectKey("NetworkPolicy", "shop", "deny-all"); // "NetworkPolicy/shop/deny-all"
 * ```
 */
export function policyObjectKey(kind: PolicyKind, namespace: string, name: string): string {
  return [kind, namespace, name].join("/");
}

/**
 * Normalizes a valid policy (one `validatePolicy` has no issue with, as
 * `buildWorld` and the agent's conversion guarantee).
 *
 * @example
 * ```ts
 * const { rules } = normalizePolicy(policy);
 * rules[0]?.ports?.numeric[0]; // { protocol: 6, lo: 8000, hi: 8003, prefixes: [{ port: 8000, prefixLen: 14 }] }
 * ```
 * @throws {PolicyError} naming the field when a CIDR or port range cannot be converted: only for a policy that skipped validation.
 */
export function normalizePolicy(policy: AnyPolicy): NormalizedPolicy {
  const namespace = policy.metadata.namespace ?? "default";
  const { kind, spec } = policy;
  const name = policy.metadata.name;
  const unconvertible = (field: string, detail: string, cause: unknown): PolicyError => new PolicyError({ kind, namespace, name, field, detail, cause });
  const prefixes = new Map<string, Cidr>();
  const cidr = (text: string, field: string): Cidr => {
    let parsed: Cidr;
    try {
      parsed = parseCidr(text);
    } catch (cause) {
      if (cause instanceof IpParseError) throw unconvertible(field, `${JSON.stringify(text)} is not a valid CIDR: ${cause.reason}`, cause);
      throw cause;
    }
    // The text as it came when it is canonical (nearly always): the policy's object, which the informer keeps,
    // and the ipcache share one string per CIDR instead of holding two equal ones (~40 bytes each).
    const canonical = formatCidr(parsed);
    prefixes.set(canonical === text ? text : canonical, parsed);
    return parsed;
  };
  const peersOf = (peers: PolicyPeer[] | undefined, field: string): NormalizedPeer[] | undefined => {
    if (!peers || peers.length === 0) return undefined;
    // Validation leaves an ipBlock peer without selectors.
    return peers.map((peer, i) =>
      peer.ipBlock
        ? blockPeer(
            cidr(peer.ipBlock.cidr, `${field}[${i}].ipBlock.cidr`),
            peer.ipBlock.except?.length ? peer.ipBlock.except.map((e, j) => cidr(e, `${field}[${i}].ipBlock.except[${j}]`)) : NO_EXCEPT,
          )
        : sharedPeer(peer.podSelector, peer.namespaceSelector),
    );
  };
  const portsOf = (ports: PolicyPort[] | undefined, field: string): RulePorts | undefined => {
    if (!ports || ports.length === 0) return undefined;
    const out: RulePorts = { numeric: [], named: [] };
    ports.forEach((entry, i) => {
      const protocol = entry.protocol ?? "TCP";
      if (typeof entry.port === "string") {
        out.named.push({ name: entry.port, protocol });
        return;
      }
      const lo = entry.port ?? 0;
      const hi = entry.port === undefined ? MAX_PORT : (entry.endPort ?? entry.port);
      try {
        out.numeric.push({ protocol: PROTOCOL_NUMBERS[protocol], lo, hi, prefixes: portRangePrefixes(lo, hi) });
      } catch (cause) {
        if (cause instanceof PortRangeError) throw unconvertible(`${field}[${i}]`, `ports ${lo} to ${hi} are not a port range`, cause);
        throw cause;
      }
    });
    return sharedPorts(out);
  };
  const declared = spec.policyTypes ?? [];
  const types = sharedTypes(declared.length > 0 ? [...new Set(declared)] : ["Ingress", ...((spec.egress?.length ?? 0) > 0 ? ["Egress" as const] : [])]);
  const rules: NormalizedRule[] = [];
  for (const direction of types) {
    const ingress = direction === "Ingress";
    const base = ingress ? "spec.ingress" : "spec.egress";
    const list: (EBPFIngressRule | EBPFEgressRule)[] = (ingress ? spec.ingress : spec.egress) ?? [];
    list.forEach((rule, index) => {
      const peers = ingress ? (rule as EBPFIngressRule).from : (rule as EBPFEgressRule).to;
      rules.push({
        direction,
        index,
        // A NetworkPolicy has no actions: every rule allows.
        action: kind === "EBPFNetworkPolicy" ? (rule.action ?? "Allow") : "Allow",
        peers: peersOf(peers, `${base}[${index}].${ingress ? "from" : "to"}`),
        ports: portsOf(rule.ports, `${base}[${index}].ports`),
        tcpStrict: kind === "EBPFNetworkPolicy" && (rule as EBPFIngressRule | EBPFEgressRule).tcp?.strict === true,
        tcpLimits: kind === "EBPFNetworkPolicy" && (rule.action ?? "Allow") === "Allow" ? tcpLimitsOf((rule as EBPFIngressRule | EBPFEgressRule).tcp) : undefined,
        http: kind === "EBPFNetworkPolicy" ? (rule as EBPFIngressRule | EBPFEgressRule).http : undefined,
        tls: kind === "EBPFNetworkPolicy" ? (rule as EBPFIngressRule | EBPFEgressRule).tls : undefined,
      });
    });
  }
  return {
    key: policyObjectKey(kind, namespace, name),
    kind,
    namespace,
    name,
    mode: policy.kind === "EBPFNetworkPolicy" ? (policy.spec.mode ?? "Enforce") : "Enforce",
    selector: sharedSelector(policy.kind === "NetworkPolicy" ? policy.spec.podSelector : policy.spec.selector),
    types,
    rules: rules.slice(),
    prefixes: prefixes.size === 0 ? NO_PREFIXES : { texts: [...prefixes.keys()], cidrs: [...prefixes.values()] },
  };
}
