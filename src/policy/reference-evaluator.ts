/**
 * The reference evaluator: who may talk to whom, computed straight from the
 * Kubernetes NetworkPolicy API reference and EBPFNetworkPolicy's additions,
 * one packet at a time, by walking every policy. It is deliberately simple
 * and shares no code with the compiler (its own label-selector matcher, and
 * Node's `BlockList` for CIDRs; only address text is read with Palisade's one
 * parser), so that tests can use it as the oracle the compiled datapath state
 * is checked against.
 *
 * @module
 */
import { BlockList, isIP } from "node:net";
import type { AnyPolicy, EBPFEgressRule, EBPFIngressRule, HttpRule, IPBlock, LabelSelector, PolicyPeer, PolicyPort, PolicyType, TlsRule } from "./api-types.ts";
import { referenceHttpVerdict, referenceRequestHost } from "./http-reference.ts";
import type { PathReading } from "./http-reference.ts";
import type { RawHttpRequest } from "./http-request.ts";
import { canonicalIp, ipFamily } from "./ip.ts";
import type { Packet, PodInfo, World } from "./world.ts";

/**
 * Why a direction got its verdict.
 * - `not-isolated`: no Enforce policy that applies to the pod lists this direction.
 * - `allowed`: an Allow rule matched.
 * - `denied-by-rule`: an EBPFNetworkPolicy Deny rule matched (it beats every Allow).
 * - `default-deny`: the direction is isolated and no rule matched.
 * - `host`: ingress from the pod's node, which a pod cannot block.
 * - `not-a-pod`: this end of the packet is not a pod, so no policy applies to it.
 * - `self`: a pod talking to itself, which a pod cannot block either.
 */
export type EvaluationReason = "not-isolated" | "allowed" | "denied-by-rule" | "default-deny" | "host" | "not-a-pod" | "self";

/** A verdict for one direction and what decided it. */
export interface DirectionVerdict {
  allowed: boolean;
  reason: EvaluationReason;
  /** What decided: the matched rules (`Kind ns/name rule i`), or for default-deny the isolating policies (`Kind ns/name`). */
  policies: string[];
  /**
   * A TCP flow allowed only by rules with `tcp.strict`: it may open by a SYN alone and keep valid
   * flags. False when any matching Allow rule lacks it (rules add up), and when no rule allowed it.
   */
  tcpStrict: boolean;
  /**
   * A TCP flow allowed only by rules with connection limits (`tcp.maxConnectionsPerSource`,
   * `tcp.newConnectionsPerSecond`): one of them is charged for it. False when any matching Allow rule
   * has none (rules add up), and when no rule allowed it.
   */
  tcpLimited: boolean;
  /** For an allowed TCP flow whose requests or TLS connections the proxy judges: the rules it judges by (see {@link HttpFindings}). */
  http?: HttpFindings;
}

/** The matching rules with `http` or `tls` of one direction: what its requests and TLS connections are judged by. */
export interface HttpFindings {
  /** A request or connection must match one of these; undefined when a matching Allow rule has neither `http` nor `tls` (everything passes). */
  allows: NamedHttpRules[] | undefined;
  /** A request or connection matching one of these is refused. */
  denies: NamedHttpRules[];
}

/** A rule's name (`Kind ns/name rule i`) and its `http` list or its `tls` (and with termination, both). */
export interface NamedHttpRules {
  name: string;
  /** The namespace of the rule's policy (where the objects its `tls` names are). */
  namespace?: string;
  http?: HttpRule[];
  tls?: TlsRule;
}

/** The verdict of one direction (egress at the source pod, ingress at the destination pod). */
export interface DirectionResult extends DirectionVerdict {
  /** The verdict with Audit-mode policies counted as if they were enforced. */
  audit: DirectionVerdict;
}

/** The verdict for a packet: allowed when both its egress and its ingress are. */
export interface Evaluation {
  allowed: boolean;
  egress: DirectionResult;
  ingress: DirectionResult;
}

/**
 * Decides whether the first packet of a flow may pass.
 *
 * @example
 * ```ts
 * const result = evaluate(world, { src: { ip: "10.244.1.10" }, dst: { ip: "10.244.1.11" }, protocol: "TCP", port: 8080 });
 * result.allowed; // false
 * result.ingress; // { allowed: false, reason: "default-deny", policies: ["NetworkPolicy shop/default-deny"], audit: {...} }
 * ```
 */
export function evaluate(world: World, packet: Packet): Evaluation {
  const srcIp = packetIp(packet.src.ip, "src");
  const dstIp = packetIp(packet.dst.ip, "dst");
  const srcPod = podWithIp(world, srcIp);
  const dstPod = podWithIp(world, dstIp);
  const same = srcPod !== undefined && srcPod === dstPod;

  let egress: DirectionResult;
  if (srcPod === undefined) egress = fixed("not-a-pod");
  else if (same) egress = fixed("self");
  else egress = evaluateDirection(world, packet, srcPod, "Egress", { ip: dstIp, pod: dstPod }, dstPod);

  let ingress: DirectionResult;
  if (dstPod === undefined) ingress = fixed("not-a-pod");
  else if (same) ingress = fixed("self");
  else if (world.hostIPs.some((ip) => canonicalIp(ip) === srcIp)) ingress = fixed("host");
  else ingress = evaluateDirection(world, packet, dstPod, "Ingress", { ip: srcIp, pod: srcPod }, dstPod);

  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

/** The verdict for one HTTP request on an allowed flow. */
export interface RequestEvaluation {
  /**
   * `malformed`: refused with 400 before any rule; `misdirected`: inside a terminated connection, for a host the
   * rules that terminated it do not name, 421 before any `http` entry; `refused`: 403; `allowed`: forwarded.
   */
  outcome: "allowed" | "refused" | "misdirected" | "malformed";
  /** Forwarded, but an Audit-mode policy would have refused it. */
  audited: boolean;
  /** The rule that refused it (or for audited, would have), when one did. */
  rule?: string;
}

/**
 * Decides an HTTP request sent on a TCP flow (`packet` its first packet): refused at L3/L4 as the
 * flow is; else at each end, a matching Deny entry refuses it, and where only rules with `http`
 * allow the flow, one of their entries must match. Requests that cannot be read one way only are
 * malformed wherever they go, as the proxy judges every steered request; unsteered flows are not
 * judged at all. Deny entries match the path as written, with repeated slashes merged, and with
 * `;` parameters dropped as well, as some servers read it. Inside a terminated connection
 * (`terminated`), a well-formed request whose host no `serverNames` entry of the rules that
 * terminated it names is misdirected (421), before any `http` entry.
 *
 * @example
 * ```ts
 * evaluateRequest(world, packet, { method: "GET", target: "/admin", fields: [["Host", "api"]] });
 * // { outcome: "refused", audited: false, rule: "EBPFNetworkPolicy shop/no-admin rule 0" }
 * ```
 */
export function evaluateRequest(world: World, packet: Packet, request: RawHttpRequest, terminated?: ReferenceTermination): RequestEvaluation {
  const flow = evaluate(world, packet);
  if (!flow.allowed) return { outcome: "refused", audited: false };
  const matches = (named: NamedHttpRules, readings: readonly PathReading[] = ["written"]): boolean => {
    const rules = named.http;
    if (rules === undefined) return false;
    return readings.some((reading) => {
      const verdict = referenceHttpVerdict(rules, request, reading);
      return !verdict.refused && verdict.rule >= 0;
    });
  };
  // A Deny rule refuses what it matches in any path a server may read; Allow rules match the path as written.
  const denies = (named: NamedHttpRules): boolean => matches(named, ["written", "merged", "bare"]);
  // Inside a terminated connection: the end whose rules terminated it judges, by those rules (one without
  // http admits every request) and its Deny rules with http; an Audit-mode policy judges no such request.
  const terminatedBy = terminated?.rules;
  const admits = (named: NamedHttpRules): boolean => (terminatedBy === undefined ? named.tls === undefined && matches(named) : terminatedBy.includes(named.name) && (named.http === undefined || matches(named)));
  const judged = (findings: HttpFindings | undefined): { refused: boolean; rule?: string | undefined } => {
    if (!findings) return { refused: false };
    const deny = findings.denies.find(denies);
    if (deny) return { refused: true, rule: deny.name };
    if (findings.allows === undefined || findings.allows.some(admits)) return { refused: false };
    return { refused: true, rule: findings.allows[0]?.name };
  };
  const terminating = (end: DirectionResult) => end.http?.allows?.some((named) => terminatedBy?.includes(named.name)) === true;
  const ends = terminated === undefined ? [flow.egress, flow.ingress] : [flow[terminated.end]].filter(terminating);
  if (terminatedBy !== undefined && ends.length === 0) return { outcome: "refused", audited: false };
  // Terminated by rules without http, and no Deny rule with http: nothing judges the requests, as for an open allow.
  const judgesInside = (end: DirectionResult) => end.http?.denies.some((named) => named.http !== undefined) || end.http?.allows?.some((named) => terminatedBy?.includes(named.name) && named.http !== undefined);
  if (terminatedBy !== undefined && !ends.some(judgesInside)) return { outcome: "allowed", audited: false };
  if (ends.some((end) => end.http !== undefined || (end.audit.allowed && end.audit.http !== undefined))) {
    if (referenceHttpVerdict([], request).refused) return { outcome: "malformed", audited: false };
  }
  // RFC 9110 §7.4: a terminated connection was admitted for the server names of its rules (none listed: any), and
  // a request there for another host is not for this connection, whatever its rules' http entries say.
  if (terminatedBy !== undefined) {
    const host = referenceRequestHost(request);
    const rules = ends.flatMap((end) => end.http?.allows?.filter((named) => terminatedBy.includes(named.name)) ?? []);
    const namesHost = (named: NamedHttpRules) => named.tls?.serverNames === undefined || (host !== undefined && named.tls.serverNames.some((entry) => serverNameMatches(entry, host)));
    if (!rules.some(namesHost)) return { outcome: "misdirected", audited: false, ...(rules[0] ? { rule: rules[0].name } : {}) };
  }
  for (const end of ends) {
    const verdict = judged(end.http);
    if (verdict.refused) return { outcome: "refused", audited: false, ...(verdict.rule ? { rule: verdict.rule } : {}) };
  }
  for (const end of terminatedBy === undefined ? ends : []) {
    const verdict = end.audit.allowed ? judged(end.audit.http) : { refused: false };
    if (verdict.refused) return { outcome: "allowed", audited: true, ...(verdict.rule ? { rule: verdict.rule } : {}) };
  }
  return { outcome: "allowed", audited: false };
}

/** What a connection on an allowed flow came to before any request, and the rule behind it. */
export interface ConnectionEvaluation {
  /** `refused`: reset; `allowed`: passed on (a TLS connection) or on to its requests' judgement (other bytes). */
  outcome: "allowed" | "refused";
  /** Let through, but an Audit-mode policy would have refused it. */
  audited: boolean;
  rule?: string;
  /** A TLS connection the proxy terminates: see {@link ReferenceTermination}. */
  terminated?: ReferenceTermination;
}

/** How a terminated connection ends at the proxy, and which rules admitted it. */
export interface ReferenceTermination {
  /** `namespace/secretName` of the certificate presented. */
  certificate: string;
  upstream: "Plain" | "TLS";
  /** `namespace/configMapName/key` of the upstream CA when re-encrypting. */
  upstreamCA?: string;
  /** The ALPN protocols offered to the client, as the rule lists them; absent when it lists none. */
  alpn?: string[];
  /** The rules admitting the connection whose client certificate requirement the client met (names). */
  rules: string[];
  /** The end whose rules these are: rule names alone do not say (`ingress` rule 1 and `egress` rule 1 share one). */
  end: "egress" | "ingress";
}

/**
 * A client certificate as the reference sees it: the CA bundles it chains to (`namespace/configMapName/key`),
 * whether it is valid now, and its names. Undefined: the client presented none.
 */
export interface ReferenceClientCertificate {
  trustedBy: string[];
  valid: boolean;
  dns: string[];
  uri: string[];
}

/** Whether a `serverNames` entry names `serverName`: equal ignoring case, or `*.rest` and one label before `rest`. */
function serverNameMatches(entry: string, serverName: string): boolean {
  const [pattern, name] = [entry.toLowerCase(), serverName.toLowerCase()];
  if (!pattern.startsWith("*.")) return pattern === name;
  const labels = name.split(".");
  return labels.length > 1 && labels[0] !== "" && labels.slice(1).join(".") === pattern.slice(2);
}

/** Whether a client certificate meets a rule's `clientCertificate` (absent: any client does, with a certificate or not). */
function clientCertificateHolds(namespace: string, tls: TlsRule, certificate: ReferenceClientCertificate | undefined): boolean {
  const wanted = tls.clientCertificate;
  if (wanted === undefined) return true;
  if (certificate === undefined || !certificate.valid) return false;
  if (!certificate.trustedBy.includes(`${namespace}/${wanted.ca.configMapName}/${wanted.ca.key}`)) return false;
  return wanted.subjectAltNames.some((entry) =>
    entry.includes(":")
      ? certificate.uri.includes(entry)
      // A DNS name in a certificate that is no plain host name (a wildcard) names no one client.
      : certificate.dns.some((name) => /^[A-Za-z0-9.-]+$/.test(name) && !/^[0-9.]+$/.test(name) && serverNameMatches(entry, name)),
  );
}

/**
 * Decides a connection on a TCP flow (`packet` its first packet) by its first bytes, on flows the proxy
 * judges: `serverName` is the name a whole ClientHello asks for (undefined: none), `"not-tls"` stands for
 * bytes that are not TLS; `clientCertificate` is what the client would present if asked. At each end, a
 * TLS connection is refused by a Deny rule with `tls` naming it. The Allow rules admitting it are those
 * with `tls` naming it (with `termination` and no `serverNames`: any name). All of them without
 * `termination`: passed on, unless a Deny rule with `http` covers the end (it cannot see the requests).
 * All with `termination`, naming one certificate and upstream: terminated, if the client certificate meets
 * one of them; a mix, or different certificates, upstreams or ALPN protocols: refused. No admitting rule: refused where
 * only rules with `http` or `tls` allow the flow. Bytes that are not TLS are refused where no rule with
 * `http` alone allows the flow; otherwise their requests are judged (evaluateRequest). For the audit
 * verdict, rules with `termination` admit by their server names alone.
 *
 * @example
 * ```ts
 * evaluateConnection(world, packet, "api.stripe.com");
 * // { outcome: "allowed", audited: false, rule: "EBPFNetworkPolicy shop/egress rule 0" }
 * ```
 */
export function evaluateConnection(world: World, packet: Packet, serverName: string | undefined | "not-tls", clientCertificate?: ReferenceClientCertificate): ConnectionEvaluation {
  const flow = evaluate(world, packet);
  if (!flow.allowed) return { outcome: "refused", audited: false };
  const names = (named: NamedHttpRules): boolean => {
    if (named.tls === undefined || serverName === "not-tls") return false;
    if (named.tls.serverNames === undefined) return true;
    return serverName !== undefined && named.tls.serverNames.some((entry) => serverNameMatches(entry, serverName));
  };
  type Judged = { refused: boolean; rule?: string | undefined; terminated?: ReferenceTermination };
  const judged = (findings: HttpFindings | undefined, audit: boolean, end: ReferenceTermination["end"]): Judged => {
    if (!findings) return { refused: false };
    if (serverName === "not-tls") {
      const someHttpOnly = findings.allows === undefined || findings.allows.some((named) => named.http !== undefined && named.tls === undefined);
      return someHttpOnly ? { refused: false } : { refused: true, rule: findings.allows?.[0]?.name };
    }
    const tlsDeny = findings.denies.find(names);
    if (tlsDeny) return { refused: true, rule: tlsDeny.name };
    const httpDeny = findings.denies.find((named) => named.http !== undefined);
    if (findings.allows === undefined) return httpDeny ? { refused: true, rule: httpDeny.name } : { refused: false };
    const admitting = findings.allows.filter(names);
    const first = admitting[0];
    if (!first) return { refused: true, rule: findings.allows[0]?.name };
    const terminating = admitting.filter((named) => named.tls?.termination !== undefined);
    if (audit || terminating.length === 0) return httpDeny && !audit ? { refused: true, rule: httpDeny.name } : { refused: false, rule: first.name };
    if (terminating.length !== admitting.length) return { refused: true, rule: first.name };
    const describe = (named: NamedHttpRules): ReferenceTermination => {
      const termination = named.tls?.termination;
      const upstreamCA = termination?.upstreamCA;
      return {
        certificate: `${named.namespace}/${termination?.certificate.secretName}`,
        upstream: termination?.upstream ?? "Plain",
        ...(upstreamCA && { upstreamCA: `${named.namespace}/${upstreamCA.configMapName}/${upstreamCA.key}` }),
        ...(termination?.alpn && { alpn: termination.alpn }),
        rules: [],
        end,
      };
    };
    const plan = describe(first);
    if (terminating.some((named) => JSON.stringify(describe(named)) !== JSON.stringify(plan))) return { refused: true, rule: first.name };
    plan.rules = terminating.filter((named) => clientCertificateHolds(named.namespace ?? "", named.tls as TlsRule, clientCertificate)).map((named) => named.name);
    return plan.rules.length === 0 ? { refused: true, rule: first.name } : { refused: false, rule: first.name, terminated: plan };
  };
  const ends = ["egress", "ingress"] as const;
  let terminated: ReferenceTermination | undefined;
  for (const end of ends) {
    const verdict = judged(flow[end].http, false, end);
    if (verdict.refused) return { outcome: "refused", audited: false, ...(verdict.rule ? { rule: verdict.rule } : {}) };
    terminated ??= verdict.terminated;
  }
  const withTermination = terminated ? { terminated } : {};
  // Audit refusals of bytes that are not TLS are reported request by request.
  for (const end of serverName === "not-tls" ? [] : ends) {
    const verdict = flow[end].audit.allowed ? judged(flow[end].audit.http, true, end) : { refused: false };
    if (verdict.refused) return { outcome: "allowed", audited: true, ...(verdict.rule ? { rule: verdict.rule } : {}), ...withTermination };
  }
  return { outcome: "allowed", audited: false, ...withTermination };
}

/** The far end of the packet, seen from the pod whose policy is evaluated. */
interface Remote {
  ip: string;
  pod: PodInfo | undefined;
}

/** What the rules of one direction said, for one set of counted policies. */
interface Findings {
  isolating: string[];
  denies: string[];
  allows: string[];
  /** Whether a matching Allow rule lacks `tcp.strict`. */
  lenient: boolean;
  /** Whether a matching Allow rule has no TCP connection limits. */
  unlimited: boolean;
  /** Matching Allow rules with `http` or `tls`, and whether one has neither. */
  httpAllows: NamedHttpRules[];
  open: boolean;
  /** Matching Deny rules with `http` or `tls`: they refuse requests or connections, not packets. */
  httpDenies: NamedHttpRules[];
}

function evaluateDirection(world: World, packet: Packet, pod: PodInfo, direction: PolicyType, remote: Remote, dstPod: PodInfo | undefined): DirectionResult {
  const empty = (): Findings => ({ isolating: [], denies: [], allows: [], lenient: false, unlimited: false, httpAllows: [], open: false, httpDenies: [] });
  const enforced = empty();
  const audited = empty();
  for (const policy of world.policies) {
    if (policy.metadata.namespace !== pod.namespace) continue;
    if (!selectorMatches(podSelectorOf(policy), pod.labels)) continue;
    if (!policyTypesOf(policy).includes(direction)) continue;
    const name = `${policy.kind} ${policy.metadata.namespace}/${policy.metadata.name}`;
    const targets = modeOf(policy) === "Enforce" ? [enforced, audited] : [audited];
    const rules = rulesOf(policy, direction);
    for (const findings of targets) findings.isolating.push(name);
    rules.forEach((rule, i) => {
      if (!ruleMatches(world, policy, rule.peers, rule.ports, packet, remote, dstPod)) return;
      const ruleName = `${name} rule ${i}`;
      for (const findings of targets) {
        const judgedBy: NamedHttpRules | undefined = rule.http || rule.tls ? { name: ruleName, namespace: policy.metadata.namespace ?? "", ...(rule.http && { http: rule.http }), ...(rule.tls && { tls: rule.tls }) } : undefined;
        if (rule.action === "Deny" && judgedBy) {
          findings.httpDenies.push(judgedBy);
          continue;
        }
        (rule.action === "Deny" ? findings.denies : findings.allows).push(ruleName);
        if (rule.action === "Allow" && !rule.strict) findings.lenient = true;
        if (rule.action === "Allow" && !rule.limited) findings.unlimited = true;
        if (rule.action === "Allow" && judgedBy) findings.httpAllows.push(judgedBy);
        if (rule.action === "Allow" && !judgedBy) findings.open = true;
      }
    });
  }
  return { ...verdict(enforced, packet), audit: verdict(audited, packet) };
}

function verdict(findings: Findings, packet: Packet): DirectionVerdict {
  if (findings.denies.length > 0) return { allowed: false, reason: "denied-by-rule", policies: findings.denies, tcpStrict: false, tcpLimited: false };
  if (findings.allows.length > 0) {
    const tcp = packet.protocol === "TCP";
    const result: DirectionVerdict = { allowed: true, reason: "allowed", policies: findings.allows, tcpStrict: tcp && !findings.lenient, tcpLimited: tcp && !findings.unlimited };
    if (tcp && (!findings.open || findings.httpDenies.length > 0)) result.http = { allows: findings.open ? undefined : findings.httpAllows, denies: findings.httpDenies };
    return result;
  }
  if (findings.isolating.length > 0) return { allowed: false, reason: "default-deny", policies: findings.isolating, tcpStrict: false, tcpLimited: false };
  return { allowed: true, reason: "not-isolated", policies: [], tcpStrict: false, tcpLimited: false };
}

function fixed(reason: "not-a-pod" | "self" | "host"): DirectionResult {
  return { allowed: true, reason, policies: [], tcpStrict: false, tcpLimited: false, audit: { allowed: true, reason, policies: [], tcpStrict: false, tcpLimited: false } };
}

/** A rule of either API and either direction, flattened. */
interface Rule {
  peers: PolicyPeer[] | undefined;
  ports: PolicyPort[] | undefined;
  action: "Allow" | "Deny";
  /** `tcp.strict` (EBPFNetworkPolicy only). */
  strict: boolean;
  /** `tcp.maxConnectionsPerSource` or `tcp.newConnectionsPerSecond` set (EBPFNetworkPolicy only). */
  limited: boolean;
  /** `http` (EBPFNetworkPolicy only). */
  http: HttpRule[] | undefined;
  /** `tls` (EBPFNetworkPolicy only). */
  tls: TlsRule | undefined;
}

function rulesOf(policy: AnyPolicy, direction: PolicyType): Rule[] {
  // Only EBPFNetworkPolicy has actions; every NetworkPolicy rule allows.
  const ebpf = policy.kind === "EBPFNetworkPolicy";
  const actionOf = (rule: { action?: "Allow" | "Deny" }): "Allow" | "Deny" => (ebpf ? (rule.action ?? "Allow") : "Allow");
  const strictOf = (rule: EBPFIngressRule | EBPFEgressRule): boolean => ebpf && rule.tcp?.strict === true;
  const limitedOf = (rule: EBPFIngressRule | EBPFEgressRule): boolean =>
    ebpf && (rule.tcp?.maxConnectionsPerSource !== undefined || rule.tcp?.newConnectionsPerSecond !== undefined);
  if (direction === "Ingress") {
    const rules: EBPFIngressRule[] = policy.spec.ingress ?? [];
    return rules.map((rule) => ({ peers: rule.from, ports: rule.ports, action: actionOf(rule), strict: strictOf(rule), limited: limitedOf(rule), http: ebpf ? rule.http : undefined, tls: ebpf ? rule.tls : undefined }));
  }
  const rules: EBPFEgressRule[] = policy.spec.egress ?? [];
  return rules.map((rule) => ({ peers: rule.to, ports: rule.ports, action: actionOf(rule), strict: strictOf(rule), limited: limitedOf(rule), http: ebpf ? rule.http : undefined, tls: ebpf ? rule.tls : undefined }));
}

function podSelectorOf(policy: AnyPolicy): LabelSelector {
  return policy.kind === "NetworkPolicy" ? (policy.spec.podSelector ?? {}) : policy.spec.selector;
}

/** Absent or empty policyTypes: Ingress, plus Egress when there is at least one egress rule. */
function policyTypesOf(policy: AnyPolicy): PolicyType[] {
  const listed = policy.spec.policyTypes ?? [];
  if (listed.length > 0) return listed;
  return (policy.spec.egress ?? []).length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
}

function modeOf(policy: AnyPolicy): "Enforce" | "Audit" {
  return policy.kind === "EBPFNetworkPolicy" ? (policy.spec.mode ?? "Enforce") : "Enforce";
}

/** A rule matches when one of its peers matches the remote end and one of its ports the packet; absent or empty lists match everything. */
function ruleMatches(world: World, policy: AnyPolicy, peers: PolicyPeer[] | undefined, ports: PolicyPort[] | undefined, packet: Packet, remote: Remote, dstPod: PodInfo | undefined): boolean {
  const peerOk = peers === undefined || peers.length === 0 || peers.some((peer) => peerMatches(world, policy, peer, remote));
  const portOk = ports === undefined || ports.length === 0 || ports.some((port) => portMatches(port, packet, dstPod));
  return peerOk && portOk;
}

function peerMatches(world: World, policy: AnyPolicy, peer: PolicyPeer, remote: Remote): boolean {
  if (peer.ipBlock !== undefined) return ipBlockContains(peer.ipBlock, remote.ip);
  if (remote.pod === undefined) return false;
  // Without a namespaceSelector the peer means pods of the policy's own namespace.
  const namespaceOk =
    peer.namespaceSelector === undefined
      ? remote.pod.namespace === policy.metadata.namespace
      : selectorMatches(peer.namespaceSelector, world.namespaces.get(remote.pod.namespace)?.labels ?? {});
  const podOk = peer.podSelector === undefined || selectorMatches(peer.podSelector, remote.pod.labels);
  return namespaceOk && podOk;
}

/**
 * Inside cidr and outside every except. An address only ever matches a
 * block of its own family: BlockList alone would let IPv6 `::/0` match
 * IPv4 addresses, and an IPv4 block match IPv4-mapped IPv6 addresses, which
 * the datapath (one table per family) never does.
 */
function ipBlockContains(block: IPBlock, ip: string): boolean {
  const family = isIP(ip);
  const type = family === 4 ? "ipv4" : "ipv6";
  const inside = (cidr: string): boolean => {
    const [address = "", prefix = ""] = cidr.split("/");
    if (ipFamily(address) !== family) return false;
    const list = new BlockList();
    list.addSubnet(address, Number(prefix), type);
    return list.check(ip, type);
  };
  return inside(block.cidr) && !(block.except ?? []).some(inside);
}

/**
 * Protocol (default TCP) equal to the packet's, so ICMP never matches a port
 * entry; then no port = any port, a number = that port or the range up to
 * endPort, a name = a container port of the destination pod with that name,
 * the same protocol and the packet's port.
 */
function portMatches(port: PolicyPort, packet: Packet, dstPod: PodInfo | undefined): boolean {
  if ((port.protocol ?? "TCP") !== packet.protocol) return false;
  if (port.port === undefined) return true;
  if (typeof port.port === "number") {
    const last = port.endPort ?? port.port;
    return packet.port >= port.port && packet.port <= last;
  }
  const name = port.port;
  return dstPod?.namedPorts.some((named) => named.name === name && named.protocol === packet.protocol && named.port === packet.port) ?? false;
}

/** Label selector semantics: every matchLabels pair and every expression must hold; `{}` selects everything. */
function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  const has = (key: string): boolean => Object.hasOwn(labels, key);
  const labelsOk = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => has(key) && labels[key] === value);
  const expressionsOk = (selector.matchExpressions ?? []).every((req) => {
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        return has(req.key) && values.includes(labels[req.key] ?? "");
      case "NotIn":
        return !has(req.key) || !values.includes(labels[req.key] ?? "");
      case "Exists":
        return has(req.key);
      case "DoesNotExist":
        return !has(req.key);
    }
  });
  return labelsOk && expressionsOk;
}

function podWithIp(world: World, ip: string): PodInfo | undefined {
  for (const pod of world.pods.values()) {
    if (pod.ips.some((podIp) => canonicalIp(podIp) === ip)) return pod;
  }
  return undefined;
}

function packetIp(ip: string, end: "src" | "dst"): string {
  if (ipFamily(ip) === 0) throw new TypeError(`Cannot evaluate packet: ${end}.ip ${JSON.stringify(ip)} is not a valid IP address`);
  return canonicalIp(ip);
}
