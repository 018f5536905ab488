import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { EBPFNetworkPolicy, NetworkPolicy } from "./api-types.ts";
import { worldFromParts } from "./normalize.ts";
import type { EvaluationReason } from "./reference-evaluator.ts";
import { evaluate } from "./reference-evaluator.ts";
import type { PacketProtocol, World } from "./world.ts";

// The upstream network policy e2e model: namespaces x, y, z with pods a, b, c
// each. Pod IPs: 10.0.<ns>.<pod> and fd00:0:<ns>::<pod> (x=1, y=2, z=3; a=1, b=2, c=3).
const NAMESPACES = ["x", "y", "z"] as const;
const PODS = ["a", "b", "c"] as const;
const HOST = "192.168.0.10";
const EXTERNAL = "203.0.113.7";

function ip4(pod: string): string {
  const [ns = "", name = ""] = pod.split("/");
  return `10.0.${NAMESPACES.indexOf(ns as "x") + 1}.${PODS.indexOf(name as "a") + 1}`;
}

function ip6(pod: string): string {
  const [ns = "", name = ""] = pod.split("/");
  return `fd00:0:${NAMESPACES.indexOf(ns as "x") + 1}::${PODS.indexOf(name as "a") + 1}`;
}

function modelWorld(policies: unknown[]): World {
  return worldFromParts({
    namespaces: Object.fromEntries(NAMESPACES.map((ns) => [ns, { ns }])),
    pods: NAMESPACES.flatMap((ns) =>
      PODS.map((name) => ({
        namespace: ns,
        name,
        labels: { pod: name },
        ips: [ip4(`${ns}/${name}`), ip6(`${ns}/${name}`)],
        // Pod c serves "http" on 8080, the others on 80; every pod serves serve-81-udp.
        namedPorts: [
          { name: "http", port: name === "c" ? 8080 : 80 },
          { name: "serve-81-udp", port: 81, protocol: "UDP" as const },
        ],
      })),
    ),
    policies,
    hostIPs: [HOST],
  });
}

type Spec = NetworkPolicy["spec"];
type EbpfSpec = EBPFNetworkPolicy["spec"];

function np(name: string, spec: Spec, namespace = "x"): NetworkPolicy {
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec };
}

function ebpf(name: string, spec: EbpfSpec, namespace = "x"): EBPFNetworkPolicy {
  return { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name, namespace }, spec };
}

const denyAllIngress = np("deny-all", { podSelector: {}, policyTypes: ["Ingress"] });
const denyAllEgress = np("deny-all-egress", { podSelector: {}, policyTypes: ["Egress"] });

/** An end of a test packet: `ns/pod` (its IPv4 address), `ns/pod@6` (its IPv6 address), or a literal IP. */
function address(end: string): string {
  if (end.endsWith("@6")) return ip6(end.slice(0, -2));
  return end.includes("/") ? ip4(end) : end;
}

interface Case {
  name: string;
  policies: unknown[];
  from: string;
  to: string;
  protocol?: PacketProtocol;
  port?: number;
  allowed: boolean;
  egress?: EvaluationReason;
  ingress?: EvaluationReason;
  /** Expected `policies` of the direction that policy decided (ingress if policy decided both). */
  decidedBy?: string[];
  audit?: { direction: "egress" | "ingress"; allowed: boolean; reason: EvaluationReason; policies?: string[] };
}

const cases: Case[] = [
  // Isolation and defaults.
  { name: "no policy: everything allowed", policies: [], from: "y/a", to: "x/a", allowed: true, egress: "not-isolated", ingress: "not-isolated" },
  {
    name: "default deny ingress isolates every pod of its namespace",
    policies: [denyAllIngress], from: "y/a", to: "x/b", allowed: false, ingress: "default-deny", decidedBy: ["NetworkPolicy x/deny-all"],
  },
  { name: "default deny ingress leaves egress alone", policies: [denyAllIngress], from: "x/a", to: "y/a", allowed: true, egress: "not-isolated", ingress: "not-isolated" },
  { name: "default deny ingress leaves other namespaces alone", policies: [denyAllIngress], from: "x/a", to: "y/b", allowed: true, ingress: "not-isolated" },
  {
    name: "default deny egress blocks at the source",
    policies: [denyAllEgress], from: "x/a", to: "y/a", allowed: false, egress: "default-deny", ingress: "not-isolated", decidedBy: ["NetworkPolicy x/deny-all-egress"],
  },
  {
    name: "allow-all ingress: one empty rule",
    policies: [denyAllIngress, np("allow-all", { podSelector: {}, ingress: [{}] })],
    from: "z/c", to: "x/a", allowed: true, ingress: "allowed", decidedBy: ["NetworkPolicy x/allow-all rule 0"],
  },
  {
    name: "allow-all ingress admits external addresses",
    policies: [np("allow-all", { podSelector: {}, ingress: [{ from: [] }] })], from: EXTERNAL, to: "x/a", allowed: true, egress: "not-a-pod", ingress: "allowed",
  },
  {
    name: "policy applies only to the pods its selector picks",
    policies: [np("deny-a", { podSelector: { matchLabels: { pod: "a" } } })], from: "y/a", to: "x/b", allowed: true, ingress: "not-isolated",
  },
  {
    name: "selector expressions: In, NotIn, DoesNotExist all hold",
    policies: [np("deny", { podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["a"] }, { key: "pod", operator: "NotIn", values: ["b", "c"] }, { key: "tier", operator: "DoesNotExist" }] } })],
    from: "y/a", to: "x/a", allowed: false, ingress: "default-deny",
  },
  {
    name: "selector expressions: NotIn matches pods without the label",
    policies: [np("deny", { podSelector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["web"] }] } })],
    from: "y/a", to: "x/a", allowed: false, ingress: "default-deny",
  },
  {
    name: "selector expressions: one failing expression fails the selector",
    policies: [np("deny", { podSelector: { matchExpressions: [{ key: "pod", operator: "Exists" }, { key: "pod", operator: "NotIn", values: ["a"] }] } })],
    from: "y/a", to: "x/a", allowed: true, ingress: "not-isolated",
  },
  {
    name: "policyTypes absent with egress rules: Ingress and Egress",
    policies: [np("p", { podSelector: {}, egress: [{ to: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })],
    from: "x/a", to: "y/a", allowed: false, egress: "default-deny", ingress: "not-isolated",
  },
  {
    name: "policyTypes absent with egress rules: ingress isolated too",
    policies: [np("p", { podSelector: {}, egress: [{ to: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })],
    from: "y/a", to: "x/a", allowed: false, egress: "not-isolated", ingress: "default-deny",
  },
  {
    name: "policyTypes absent with an empty egress list: Ingress only",
    policies: [np("p", { podSelector: {}, egress: [] })], from: "x/a", to: "y/a", allowed: true, egress: "not-isolated",
  },
  {
    name: "policyTypes empty list defaults like absent",
    policies: [np("p", { podSelector: {}, policyTypes: [] })], from: "y/a", to: "x/a", allowed: false, ingress: "default-deny",
  },
  {
    name: "rules of a direction missing from policyTypes are ignored",
    policies: [np("p", { podSelector: {}, policyTypes: ["Egress"], ingress: [{}] }), denyAllIngress],
    from: "y/a", to: "x/a", allowed: false, ingress: "default-deny", decidedBy: ["NetworkPolicy x/deny-all"],
  },
  {
    name: "policies add up: a second policy allows what the first does not",
    policies: [
      np("allow-b", { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] }),
      np("allow-c", { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "c" } } }] }] }),
    ],
    from: "x/c", to: "x/a", allowed: true, ingress: "allowed", decidedBy: ["NetworkPolicy x/allow-c rule 0"],
  },
  {
    name: "every matching rule is listed",
    policies: [np("two", { podSelector: {}, ingress: [{}, { ports: [{ port: 80 }] }, { ports: [{ port: 81 }] }] })],
    from: "y/a", to: "x/a", port: 80, allowed: true, ingress: "allowed", decidedBy: ["NetworkPolicy x/two rule 0", "NetworkPolicy x/two rule 1"],
  },
  // Peers.
  ...peerCases(),
  // Ports.
  ...portCases(),
  // Deny, audit, host, self, non-pods.
  ...ebpfCases(),
  {
    name: "host: ingress from the node is always allowed",
    policies: [denyAllIngress], from: HOST, to: "x/a", allowed: true, egress: "not-a-pod", ingress: "host",
  },
  {
    name: "host: egress to the node is checked like any address",
    policies: [denyAllEgress], from: "x/a", to: HOST, allowed: false, egress: "default-deny", ingress: "not-a-pod",
  },
  {
    name: "host: egress to the node allowed by an ipBlock",
    policies: [np("to-host", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: `${HOST}/32` } }] }] })],
    from: "x/a", to: HOST, allowed: true, egress: "allowed",
  },
  { name: "neither end a pod", policies: [denyAllIngress, denyAllEgress], from: EXTERNAL, to: HOST, allowed: true, egress: "not-a-pod", ingress: "not-a-pod" },
  { name: "a pod cannot block itself", policies: [denyAllIngress, denyAllEgress], from: "x/a", to: "x/a", allowed: true, egress: "self", ingress: "self" },
  { name: "a pod cannot block itself over IPv6 either", policies: [denyAllIngress], from: "x/a@6", to: "x/a@6", allowed: true, ingress: "self" },
  {
    name: "egress allowed but ingress denied: packet denied",
    policies: [np("egress-any", { podSelector: {}, policyTypes: ["Egress"], egress: [{}] }), np("deny-all", { podSelector: {} }, "y")],
    from: "x/a", to: "y/a", allowed: false, egress: "allowed", ingress: "default-deny",
  },
];

function peerCases(): Case[] {
  const and = [np("and", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "b" } } }] }] })];
  const or = [np("or", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }, { podSelector: { matchLabels: { pod: "b" } } }] }] })];
  const except = [np("except", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.2.0/24"] } }] }] })];
  return [
    { name: "namespaceSelector and podSelector in one peer: both must match", policies: and, from: "y/b", to: "x/a", allowed: true, ingress: "allowed" },
    { name: "AND peer: right namespace, wrong pod", policies: and, from: "y/a", to: "x/a", allowed: false, ingress: "default-deny" },
    { name: "AND peer: right pod, wrong namespace", policies: and, from: "x/b", to: "x/a", allowed: false, ingress: "default-deny" },
    { name: "two peers OR: namespace peer admits any pod there", policies: or, from: "y/a", to: "x/a", allowed: true, ingress: "allowed" },
    { name: "two peers OR: pod peer admits pod b of the policy's namespace", policies: or, from: "x/b", to: "x/a", allowed: true, ingress: "allowed" },
    { name: "two peers OR: pod peer does not reach other namespaces", policies: or, from: "z/b", to: "x/a", allowed: false, ingress: "default-deny" },
    {
      name: "podSelector {} peer: every pod of the policy's namespace",
      policies: [np("same-ns", { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], from: "x/c", to: "x/a", allowed: true, ingress: "allowed",
    },
    {
      name: "podSelector {} peer: not pods of other namespaces",
      policies: [np("same-ns", { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], from: "y/c", to: "x/a", allowed: false, ingress: "default-deny",
    },
    {
      name: "namespaceSelector {} peer: pods of every namespace",
      policies: [np("all-ns", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })], from: "z/c", to: "x/a", allowed: true, ingress: "allowed",
    },
    {
      name: "namespaceSelector {} peer: not external addresses",
      policies: [np("all-ns", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })], from: EXTERNAL, to: "x/a", allowed: false, ingress: "default-deny",
    },
    {
      name: "namespaceSelector on the automatic name label",
      policies: [np("by-name", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "z" } } }] }] })],
      from: "z/a", to: "x/a", allowed: true, ingress: "allowed",
    },
    { name: "ipBlock: inside cidr", policies: except, from: "z/a", to: "x/a", allowed: true, ingress: "allowed" },
    { name: "ipBlock: inside except", policies: except, from: "y/a", to: "x/a", allowed: false, ingress: "default-deny" },
    { name: "ipBlock: outside cidr", policies: except, from: EXTERNAL, to: "x/a", allowed: false, ingress: "default-deny" },
    {
      name: "ipBlock matches a pod IP",
      policies: [np("pod-ip", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.2.1/32" } }] }] })], from: "y/a", to: "x/a", allowed: true, ingress: "allowed",
    },
    {
      name: "ipBlock with host bits set means its network",
      policies: [np("host-bits", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.3.200/24" } }] }] })], from: "z/b", to: "x/a", allowed: true, ingress: "allowed",
    },
    {
      name: "ipBlock IPv6",
      policies: [np("v6", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "fd00:0:2::/48" } }] }] })], from: "y/c@6", to: "x/a@6", allowed: true, ingress: "allowed",
    },
    {
      name: "ipBlock ::/0 does not match IPv4",
      policies: [np("v6-all", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "::/0" } }] }] })], from: EXTERNAL, to: "x/a", allowed: false, ingress: "default-deny",
    },
    {
      name: "ipBlock 0.0.0.0/0 does not match IPv6",
      policies: [np("v4-all", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }] })], from: "2001:db8::1", to: "x/a@6", allowed: false, ingress: "default-deny",
    },
    {
      name: "ipBlock of IPv4 does not match an IPv4-mapped IPv6 address",
      policies: [np("v4", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "203.0.113.0/24" } }] }] })], from: "::ffff:203.0.113.7", to: "x/a@6", allowed: false, ingress: "default-deny",
    },
    {
      name: "egress peers match the destination",
      policies: [np("to-y", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] })],
      from: "x/a", to: "y/c", allowed: true, egress: "allowed", ingress: "not-isolated",
    },
    {
      name: "egress peers do not match other destinations",
      policies: [np("to-y", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] })],
      from: "x/a", to: "z/c", allowed: false, egress: "default-deny",
    },
  ];
}

function portCases(): Case[] {
  const named = (port: string, protocol?: "TCP" | "UDP"): NetworkPolicy[] => [np("named", { podSelector: {}, ingress: [{ ports: [{ port, ...(protocol ? { protocol } : {}) }] }] })];
  const namedEgress = [np("named-egress", { podSelector: {}, policyTypes: ["Egress"], egress: [{ ports: [{ port: "http" }] }] })];
  const range = [np("range", { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 90 }] }] })];
  const withPorts = [np("tcp-80", { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })];
  return [
    { name: "numeric port: equal", policies: withPorts, from: "y/a", to: "x/a", port: 80, allowed: true, ingress: "allowed" },
    { name: "numeric port: different", policies: withPorts, from: "y/a", to: "x/a", port: 81, allowed: false, ingress: "default-deny" },
    { name: "numeric port: protocol defaults to TCP", policies: withPorts, from: "y/a", to: "x/a", protocol: "UDP", port: 80, allowed: false, ingress: "default-deny" },
    {
      name: "protocol without port: every port of it",
      policies: [np("udp", { podSelector: {}, ingress: [{ ports: [{ protocol: "UDP" }] }] })], from: "y/a", to: "x/a", protocol: "UDP", port: 5353, allowed: true, ingress: "allowed",
    },
    {
      name: "SCTP port",
      policies: [np("sctp", { podSelector: {}, ingress: [{ ports: [{ protocol: "SCTP", port: 38412 }] }] })], from: "y/a", to: "x/a", protocol: "SCTP", port: 38412, allowed: true, ingress: "allowed",
    },
    { name: "endPort: first port", policies: range, from: "y/a", to: "x/a", port: 80, allowed: true, ingress: "allowed" },
    { name: "endPort: inside", policies: range, from: "y/a", to: "x/a", port: 85, allowed: true, ingress: "allowed" },
    { name: "endPort: last port", policies: range, from: "y/a", to: "x/a", port: 90, allowed: true, ingress: "allowed" },
    { name: "endPort: below", policies: range, from: "y/a", to: "x/a", port: 79, allowed: false, ingress: "default-deny" },
    { name: "endPort: above", policies: range, from: "y/a", to: "x/a", port: 91, allowed: false, ingress: "default-deny" },
    { name: "ICMP never matches a rule with ports", policies: withPorts, from: "y/a", to: "x/a", protocol: "ICMP", port: 0, allowed: false, ingress: "default-deny" },
    {
      name: "ICMP matches a rule without ports",
      policies: [np("icmp", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })], from: "y/a@6", to: "x/a@6", protocol: "ICMP", port: 0, allowed: true, ingress: "allowed",
    },
    { name: "named port ingress: resolved on the pod itself (c: http=8080)", policies: named("http"), from: "y/a", to: "x/c", port: 8080, allowed: true, ingress: "allowed" },
    { name: "named port ingress: another pod's number does not count", policies: named("http"), from: "y/a", to: "x/c", port: 80, allowed: false, ingress: "default-deny" },
    { name: "named port ingress: pod a has http=80", policies: named("http"), from: "y/a", to: "x/a", port: 80, allowed: true, ingress: "allowed" },
    { name: "named port ingress: protocol mismatch with the container port", policies: named("http", "UDP"), from: "y/a", to: "x/a", protocol: "UDP", port: 80, allowed: false, ingress: "default-deny" },
    { name: "named port ingress: UDP name with UDP protocol", policies: named("serve-81-udp", "UDP"), from: "y/a", to: "x/a", protocol: "UDP", port: 81, allowed: true, ingress: "allowed" },
    { name: "named port ingress: UDP name, protocol defaulting to TCP", policies: named("serve-81-udp"), from: "y/a", to: "x/a", protocol: "TCP", port: 81, allowed: false, ingress: "default-deny" },
    { name: "named port ingress: unknown name", policies: named("metrics"), from: "y/a", to: "x/a", port: 80, allowed: false, ingress: "default-deny" },
    { name: "named port egress: resolved on the destination pod", policies: namedEgress, from: "x/a", to: "y/c", port: 8080, allowed: true, egress: "allowed" },
    { name: "named port egress: destination pod's number, not the source's", policies: namedEgress, from: "x/a", to: "y/c", port: 80, allowed: false, egress: "default-deny" },
    { name: "named port egress: a non-pod destination never matches", policies: namedEgress, from: "x/a", to: EXTERNAL, port: 80, allowed: false, egress: "default-deny" },
    { name: "named port egress: IPv6 destination pod", policies: namedEgress, from: "x/a@6", to: "z/b@6", port: 80, allowed: true, egress: "allowed" },
  ];
}

function ebpfCases(): Case[] {
  const allowAll = np("allow-all", { podSelector: {}, ingress: [{}] });
  const denyB = ebpf("deny-b", { selector: {}, ingress: [{ action: "Deny", from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "b" } } }] }] });
  const auditDenyAll = ebpf("audit-deny", { selector: {}, mode: "Audit", policyTypes: ["Ingress"] });
  return [
    {
      name: "EBPF Deny beats a NetworkPolicy Allow", policies: [allowAll, denyB],
      from: "y/b", to: "x/a", allowed: false, ingress: "denied-by-rule", decidedBy: ["EBPFNetworkPolicy x/deny-b rule 0"],
    },
    { name: "EBPF Deny leaves unmatched traffic to the Allow", policies: [allowAll, denyB], from: "y/c", to: "x/a", allowed: true, ingress: "allowed", decidedBy: ["NetworkPolicy x/allow-all rule 0"] },
    {
      name: "EBPF Deny beats an Allow of the same policy, whatever the order",
      policies: [ebpf("mixed", { selector: {}, ingress: [{}, { action: "Deny", ports: [{ port: 22 }] }] })],
      from: "y/a", to: "x/a", port: 22, allowed: false, ingress: "denied-by-rule", decidedBy: ["EBPFNetworkPolicy x/mixed rule 1"],
    },
    {
      name: "EBPF rule action defaults to Allow",
      policies: [ebpf("allow", { selector: { matchLabels: { pod: "a" } }, ingress: [{ ports: [{ port: 443 }] }] })],
      from: "y/a", to: "x/a", port: 443, allowed: true, ingress: "allowed", decidedBy: ["EBPFNetworkPolicy x/allow rule 0"],
    },
    {
      name: "EBPF egress Deny",
      policies: [ebpf("no-dns-out", { selector: {}, egress: [{ action: "Deny", to: [{ ipBlock: { cidr: "203.0.113.0/24" } }], ports: [{ protocol: "UDP", port: 53 }] }, {}] })],
      from: "x/b", to: EXTERNAL, protocol: "UDP", port: 53, allowed: false, egress: "denied-by-rule", decidedBy: ["EBPFNetworkPolicy x/no-dns-out rule 0"],
    },
    {
      name: "Audit policy does not isolate, but its audit verdict would deny",
      policies: [auditDenyAll], from: "y/a", to: "x/a", allowed: true, ingress: "not-isolated",
      audit: { direction: "ingress", allowed: false, reason: "default-deny", policies: ["EBPFNetworkPolicy x/audit-deny"] },
    },
    {
      name: "Audit Deny rule: enforced Allow stands, audit reports the Deny",
      policies: [allowAll, ebpf("audit-deny-b", { selector: {}, mode: "Audit", ingress: [{ action: "Deny", from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })],
      from: "x/b", to: "x/a", allowed: true, ingress: "allowed",
      audit: { direction: "ingress", allowed: false, reason: "denied-by-rule", policies: ["EBPFNetworkPolicy x/audit-deny-b rule 0"] },
    },
    {
      name: "Audit verdict counts enforced policies too",
      policies: [denyAllIngress, auditDenyAll], from: "y/a", to: "x/a", allowed: false, ingress: "default-deny",
      audit: { direction: "ingress", allowed: false, reason: "default-deny", policies: ["NetworkPolicy x/deny-all", "EBPFNetworkPolicy x/audit-deny"] },
    },
    {
      name: "Audit Allow rule: audit allows what enforcement denies",
      policies: [denyAllIngress, ebpf("audit-allow", { selector: {}, mode: "Audit", ingress: [{}] })], from: "y/a", to: "x/a", allowed: false, ingress: "default-deny",
      audit: { direction: "ingress", allowed: true, reason: "allowed", policies: ["EBPFNetworkPolicy x/audit-allow rule 0"] },
    },
  ];
}

describe("evaluate", () => {
  for (const c of cases) {
    test(c.name, () => {
      const world = modelWorld(c.policies);
      const result = evaluate(world, { src: { ip: address(c.from) }, dst: { ip: address(c.to) }, protocol: c.protocol ?? "TCP", port: c.port ?? 80 });
      assert.equal(result.allowed, c.allowed, JSON.stringify(result));
      if (c.egress !== undefined) assert.equal(result.egress.reason, c.egress, JSON.stringify(result.egress));
      if (c.ingress !== undefined) assert.equal(result.ingress.reason, c.ingress, JSON.stringify(result.ingress));
      for (const direction of [result.egress, result.ingress]) {
        assert.equal(direction.allowed, ["not-isolated", "allowed", "host", "not-a-pod", "self"].includes(direction.reason));
      }
      if (c.decidedBy !== undefined) {
        const decided = ["allowed", "denied-by-rule", "default-deny"].includes(result.ingress.reason) ? result.ingress : result.egress;
        assert.deepEqual(decided.policies, c.decidedBy);
      }
      if (c.audit !== undefined) {
        const { direction, ...expected } = c.audit;
        const audit = result[direction].audit;
        assert.deepEqual({ allowed: audit.allowed, reason: audit.reason, ...(expected.policies ? { policies: audit.policies } : {}) }, expected);
      } else {
        // Without Audit policies the audit verdict is the enforced one.
        for (const direction of [result.egress, result.ingress]) {
          assert.deepEqual(direction.audit, { allowed: direction.allowed, reason: direction.reason, policies: direction.policies, tcpStrict: direction.tcpStrict, tcpLimited: direction.tcpLimited });
        }
      }
    });
  }

  test("packet addresses are compared in canonical form", () => {
    const world = modelWorld([denyAllIngress]);
    const result = evaluate(world, { src: { ip: "FD00:0:2:0::1" }, dst: { ip: "fd00:0000:1::0001" }, protocol: "TCP", port: 80 });
    assert.equal(result.ingress.reason, "default-deny");
    assert.equal(result.egress.reason, "not-isolated");
  });

  test("an invalid packet address is refused", () => {
    assert.throws(() => evaluate(modelWorld([]), { src: { ip: "10.0.1.01" }, dst: { ip: "10.0.1.1" }, protocol: "TCP", port: 80 }), {
      name: "TypeError",
      message: 'Cannot evaluate packet: src.ip "10.0.1.01" is not a valid IP address',
    });
  });

  test("an action in a NetworkPolicy rule is not a Deny: only EBPFNetworkPolicy has actions", () => {
    const world = modelWorld([np("stray", { podSelector: {}, ingress: [{}] })]);
    const rule = (world.policies[0]?.spec.ingress ?? [])[0];
    assert.ok(rule !== undefined);
    Object.assign(rule, { action: "Deny" });
    const result = evaluate(world, { src: { ip: ip4("y/a") }, dst: { ip: ip4("x/a") }, protocol: "TCP", port: 80 });
    assert.equal(result.ingress.reason, "allowed");
  });

  test("connection limits: a TCP flow is limited only when every matching Allow rule has limits", () => {
    const limited = ebpf("limited", { selector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 80 }], tcp: { maxConnectionsPerSource: 2 } }] });
    const rated = ebpf("rated", { selector: {}, mode: "Audit", ingress: [{ ports: [{ port: 80 }], tcp: { newConnectionsPerSecond: { average: 1, burst: 1 } } }] });
    const open = np("open", { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] });
    const ingress = (policies: unknown[], from: string, protocol: PacketProtocol = "TCP") =>
      evaluate(modelWorld(policies), { src: { ip: ip4(from) }, dst: { ip: ip4("x/a") }, protocol, port: 80 }).ingress;
    assert.deepEqual([ingress([limited], "x/c").tcpLimited, ingress([limited], "x/c").audit.tcpLimited], [true, true]);
    assert.equal(ingress([limited, open], "x/b").tcpLimited, false, "an unlimited allow of the same flow lifts it");
    assert.equal(ingress([limited, open], "x/c").tcpLimited, true, "an unlimited allow of other peers does not");
    assert.deepEqual([ingress([limited, rated], "x/c").tcpLimited, ingress([limited, rated], "x/c").audit.tcpLimited], [true, true]);
    assert.deepEqual([ingress([rated], "x/c").tcpLimited, ingress([rated], "x/c").audit.tcpLimited], [false, true], "an Audit-mode limit is in the audit verdict only");
    assert.deepEqual([ingress([denyAllIngress, rated], "x/c").allowed, ingress([denyAllIngress, rated], "x/c").tcpLimited], [false, false]);
    assert.equal(ingress([limited], "x/c", "SCTP").tcpLimited, false);
  });

  test("policy order never changes the verdict", () => {
    const policies = [
      denyAllIngress,
      np("allow-b", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "b" } } }] }] }),
      ebpf("deny-y", { selector: { matchLabels: { pod: "a" } }, ingress: [{ action: "Deny", from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] }),
      ebpf("audit-egress", { selector: {}, mode: "Audit", policyTypes: ["Egress"] }),
      np("egress-80", { podSelector: { matchLabels: { pod: "c" } }, egress: [{ ports: [{ port: 80 }] }] }, "y"),
    ];
    const pods = NAMESPACES.flatMap((ns) => PODS.map((pod) => `${ns}/${pod}`));
    const sortedVerdicts = (result: ReturnType<typeof evaluate>) => [result.egress, result.ingress].map((d) => ({ ...d, policies: [...d.policies].sort(), audit: { ...d.audit, policies: [...d.audit.policies].sort() } }));
    fc.assert(
      fc.property(fc.shuffledSubarray(policies, { minLength: policies.length }), fc.constantFrom(...pods), fc.constantFrom(...pods), fc.constantFrom(79, 80, 81), (shuffled, from, to, port) => {
        const packet = { src: { ip: ip4(from) }, dst: { ip: ip4(to) }, protocol: "TCP" as const, port };
        assert.deepEqual(sortedVerdicts(evaluate(modelWorld(shuffled), packet)), sortedVerdicts(evaluate(modelWorld(policies), packet)));
      }),
      { numRuns: 200 },
    );
  });
});
