/**
 * The upstream Kubernetes NetworkPolicy e2e suite
 * (kubernetes/kubernetes `test/e2e/network/netpol/network_policy.go`),
 * ported as data: every case by its upstream title, its policies, its
 * steps (policy updates, pod and namespace label changes) and the truth
 * table each probe must find, written with upstream's overrides over the
 * full model (see reachability.ts). Upstream creates only the pods a case
 * needs; here every case runs over all nine, which the same overrides
 * describe. ipBlock CIDRs built from live pod IPs are placeholders
 * (ip-placeholders.ts).
 *
 * @module
 */
import type { LabelSelector, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, PolicyType } from "../policy/index.ts";
import type { CaseStep, ConformanceCase, MatrixProbe, ProbeProtocol, StepAction } from "./case.ts";
import { NAMESPACE_NAME_LABEL } from "./model.ts";
import { allowedExcept, type Override } from "./reachability.ts";

interface PolicyParts {
  ingress?: NetworkPolicyIngressRule[];
  egress?: NetworkPolicyEgressRule[];
  /** Upstream's order of policyTypes when it sets them by hand; otherwise Ingress then Egress for the rule lists given. */
  policyTypes?: PolicyType[];
}

/** A policy as upstream's generators build it: policyTypes lists each direction whose rule list was set, even empty. */
function policy(namespace: string, name: string, podSelector: LabelSelector, parts: PolicyParts): NetworkPolicy {
  const policyTypes = parts.policyTypes ?? [...(parts.ingress !== undefined ? ["Ingress" as const] : []), ...(parts.egress !== undefined ? ["Egress" as const] : [])];
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace },
    spec: {
      podSelector,
      policyTypes,
      ...(parts.ingress !== undefined && { ingress: parts.ingress }),
      ...(parts.egress !== undefined && { egress: parts.egress }),
    },
  };
}

const all: LabelSelector = {};
const podIs = (name: string): LabelSelector => ({ matchLabels: { pod: name } });
const nsIs = (name: string): LabelSelector => ({ matchLabels: { [NAMESPACE_NAME_LABEL]: name } });
const nsNotIn = (name: string): LabelSelector => ({ matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: "NotIn", values: [name] }] });

function probe(protocol: ProbeProtocol, port: number, ...overrides: Override[]): MatrixProbe {
  return { port, protocol, expect: allowedExcept(...overrides) };
}
const tcp = (port: number, ...overrides: Override[]): MatrixProbe => probe("TCP", port, ...overrides);

function step(description: string, actions: StepAction[], ...probes: MatrixProbe[]): CaseStep {
  return { description, actions, probes };
}

function single(title: string, context: ProbeProtocol, policies: NetworkPolicy[], ...probes: MatrixProbe[]): ConformanceCase {
  return { title, context, steps: [step("policies applied", policies.map((p) => ({ apply: p })), ...probes)] };
}

const apply = (p: NetworkPolicy): StepAction => ({ apply: p });

/** Ingress to x/a only from y/a: shared by the TCP, UDP and SCTP contexts. */
function onlyFromYaToXa(protocol: ProbeProtocol): ConformanceCase {
  return single(
    "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
    protocol,
    [policy("x", "allow-ns-y-pod-a-via-namespace-pod-selector", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsIs("y"), podSelector: podIs("a") }] }] })],
    probe(protocol, 80, ["*", "x/a", false], ["y/a", "x/a", true]),
  );
}

function defaultDenyIngress(protocol: ProbeProtocol, name: string): ConformanceCase {
  return single("should support a 'default-deny-ingress' policy", protocol, [policy("x", name, all, { ingress: [] })], probe(protocol, 80, ["*", "x/*", false]));
}

function portsCase(protocol: ProbeProtocol, name: string): ConformanceCase {
  const rule = { from: [{ namespaceSelector: nsIs("y") }], ports: [{ port: 81, protocol }] };
  return single("should enforce policy based on Ports", protocol, [policy("x", name, podIs("a"), { ingress: [rule] })], probe(protocol, 81, ["x/*", "x/a", false], ["y/*", "x/a", true], ["z/*", "x/a", false]));
}

const reachXaFromY81: Override[] = [["x/*", "x/a", false], ["y/*", "x/a", true], ["z/*", "x/a", false]];

const tcpCases: ConformanceCase[] = [
  defaultDenyIngress("TCP", "deny-ingress"),
  single("should support a 'default-deny-all' policy", "TCP", [policy("x", "deny-all", all, { ingress: [], egress: [] })], tcp(80, ["*", "x/*", false], ["x/*", "*", false])),
  single(
    "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
    "TCP",
    [policy("x", "x-a-allows-x-b", podIs("a"), { ingress: [{ from: [{ podSelector: podIs("b") }] }] })],
    tcp(80, ["*", "x/a", false], ["x/b", "x/a", true]),
  ),
  single(
    "should enforce policy to allow ingress traffic for a target",
    "TCP",
    [policy("x", "deny-all", all, { ingress: [] }), policy("x", "allow-all-to-a", podIs("a"), { ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }] })],
    tcp(80, ["*", "x/a", true], ["*", "x/b", false], ["*", "x/c", false]),
  ),
  single(
    "should enforce policy to allow ingress traffic from pods in all namespaces",
    "TCP",
    [policy("x", "allow-from-another-ns", podIs("a"), { ingress: [{ from: [{ namespaceSelector: { matchLabels: {} } }] }] })],
    tcp(80),
  ),
  single(
    "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
    "TCP",
    [policy("x", "allow-client-a-via-ns-selector", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsIs("y") }] }] })],
    tcp(80, ["x/*", "x/a", false], ["z/*", "x/a", false]),
  ),
  single(
    "should enforce policy based on PodSelector with MatchExpressions",
    "TCP",
    [policy("x", "x-a-allows-x-b", podIs("a"), { ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b"] }] } }] }] })],
    tcp(80, ["*", "x/a", false], ["x/b", "x/a", true]),
  ),
  single(
    "should enforce policy based on NamespaceSelector with MatchExpressions",
    "TCP",
    [policy("x", "allow-ns-y-match-selector", podIs("a"), { ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: "In", values: ["y"] }] } }] }] })],
    tcp(80, ["x/*", "x/a", false], ["z/*", "x/a", false]),
  ),
  single(
    "should enforce policy based on PodSelector or NamespaceSelector",
    "TCP",
    [policy("x", "allow-ns-y-match-selector", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsNotIn("x") }, { podSelector: podIs("b") }] }] })],
    tcp(80, ["x/a", "x/a", false], ["x/c", "x/a", false]),
  ),
  single(
    "should enforce policy based on PodSelector and NamespaceSelector",
    "TCP",
    [policy("x", "allow-ns-y-podselector-and-nsselector", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsNotIn("x"), podSelector: podIs("b") }] }] })],
    tcp(80, ["*", "x/a", false], ["y/b", "x/a", true], ["z/b", "x/a", true]),
  ),
  single(
    "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
    "TCP",
    [policy("x", "allow-ns-y-z-pod-b-c", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsNotIn("x"), podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b", "c"] }] } }] }] })],
    tcp(80, ["x/*", "x/a", false], ["y/a", "x/a", false], ["z/a", "x/a", false]),
  ),
  single(
    "should enforce policy based on any PodSelectors",
    "TCP",
    [policy("x", "allow-ns-x-pod-b-c", podIs("a"), { ingress: [{ from: [{ podSelector: podIs("b") }, { podSelector: podIs("c") }] }] })],
    tcp(80, ["*", "x/a", false], ["x/b", "x/a", true], ["x/c", "x/a", true]),
  ),
  onlyFromYaToXa("TCP"),
  portsCase("TCP", "allow-client-a-via-ns-selector"),
  {
    title: "should enforce multiple, stacked policies with overlapping podSelectors",
    context: "TCP",
    steps: [
      step(
        "port 81 allowed from y",
        [apply(policy("x", "allow-client-a-via-ns-selector", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsIs("y") }], ports: [{ port: 81, protocol: "TCP" }] }] }))],
        tcp(81, ...reachXaFromY81),
        tcp(80, ["*", "x/a", false]),
      ),
      step(
        "a second policy unblocks port 80",
        [apply(policy("x", "allow-client-a-via-ns-selector-80", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsIs("y") }], ports: [{ port: 80, protocol: "TCP" }] }] }))],
        tcp(80, ...reachXaFromY81),
      ),
    ],
  },
  single("should support allow-all policy", "TCP", [policy("x", "allow-all", {}, { ingress: [{}] })], tcp(80), tcp(81)),
  single(
    "should allow ingress access on one named port",
    "TCP",
    [policy("x", "allow-all", {}, { ingress: [{ ports: [{ port: "serve-81-tcp" }] }] })],
    tcp(81),
    tcp(80, ["*", "x/*", false]),
  ),
  single(
    "should allow ingress access from namespace on one named port",
    "TCP",
    [policy("x", "allow-client-a-via-ns-selector-80", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsIs("y") }], ports: [{ port: "serve-80-tcp", protocol: "TCP" }] }] })],
    tcp(80, ["x/*", "x/a", false], ["z/*", "x/a", false]),
    tcp(81, ["*", "x/a", false]),
  ),
  single(
    "should allow egress access on one named port",
    "TCP",
    [policy("x", "allow-egress", {}, { egress: [{ ports: [{ port: "serve-80-tcp" }] }] })],
    tcp(80),
    tcp(81, ["x/*", "*", false]),
  ),
  {
    title: "should enforce updated policy",
    context: "TCP",
    steps: [
      step("allow all", [apply(policy("x", "allow-all-mutate-to-deny-all", {}, { ingress: [{}] }))], tcp(81)),
      step("updated to deny all", [apply(policy("x", "allow-all-mutate-to-deny-all", {}, { ingress: [] }))], tcp(81, ["*", "x/*", false])),
    ],
  },
  {
    title: "should allow ingress access from updated namespace",
    context: "TCP",
    steps: [
      step("namespace y not yet labelled", [apply(policy("x", "allow-client-a-via-ns-selector", podIs("a"), { ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: "updated" } } }] }] }))], tcp(80, ["*", "x/a", false])),
      step("namespace y labelled ns2=updated", [{ labelNamespace: "y", labels: { ns2: "updated" } }], tcp(80, ["*", "x/a", false], ["y/*", "*", true])),
    ],
  },
  {
    title: "should allow ingress access from updated pod",
    context: "TCP",
    steps: [
      step("pod x/b not yet labelled", [apply(policy("x", "allow-client-a-via-pod-selector", podIs("a"), { ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b", pod2: "updated" } } }] }] }))], tcp(80, ["*", "x/a", false])),
      step("pod x/b labelled pod2=updated", [{ labelPod: "x/b", labels: { pod: "b", pod2: "updated" } }], tcp(80, ["*", "x/a", false], ["x/b", "x/a", true])),
    ],
  },
  single(
    "should deny ingress from pods on other namespaces",
    "TCP",
    [policy("x", "deny-empty-policy", all, { ingress: [{ from: [{ podSelector: { matchLabels: {} } }] }] })],
    tcp(80, ["y/*", "x/*", false], ["z/*", "x/*", false]),
  ),
  {
    title: "should deny ingress access to updated pod",
    context: "TCP",
    steps: [
      step("no pod selected yet", [apply(policy("x", "deny-ingress-via-label-selector", { matchLabels: { target: "isolated" } }, { ingress: [] }))], tcp(80)),
      step("pod x/a labelled target=isolated", [{ labelPod: "x/a", labels: { target: "isolated" } }], tcp(80, ["*", "x/a", false])),
    ],
  },
  single("should deny egress from pods based on PodSelector", "TCP", [policy("x", "deny-egress-pod-a", podIs("a"), { egress: [] })], tcp(80, ["x/a", "*", false])),
  single("should deny egress from all pods in a namespace", "TCP", [policy("x", "deny-egress-ns-x", all, { egress: [] })], tcp(80, ["x/*", "*", false])),
  single(
    "should work with Ingress, Egress specified together",
    "TCP",
    [policy("x", "allow-client-a-via-pod-selector", podIs("a"), { ingress: [{ from: [{ podSelector: podIs("b") }] }], egress: [{ ports: [{ port: 80 }] }], policyTypes: ["Egress", "Ingress"] })],
    tcp(80, ["*", "x/a", false], ["x/b", "x/a", true]),
    tcp(81, ["*", "x/a", false], ["x/a", "*", false], ["x/b", "x/a", true]),
  ),
  single(
    "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
    "TCP",
    [
      policy("x", "allow-to-ns-y-pod-a", podIs("a"), { egress: [{ to: [{ namespaceSelector: nsIs("y"), podSelector: podIs("a") }] }] }),
      policy("y", "allow-from-xa-on-ya-match-selector", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsIs("x"), podSelector: podIs("a") }] }] }),
      policy("y", "allow-from-xa-on-yb-match-selector", podIs("b"), { ingress: [{ from: [{ namespaceSelector: nsIs("x"), podSelector: podIs("a") }] }] }),
    ],
    tcp(80, ["x/a", "*", false], ["*", "y/a", false], ["x/a", "y/a", true], ["*", "y/b", false]),
  ),
  single(
    "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
    "TCP",
    [policy("x", "allow-to-ns-y-pod-a", podIs("a"), { egress: [{ to: [{ namespaceSelector: nsIs("y"), podSelector: podIs("a") }] }] })],
    tcp(80, ["x/a", "*", false], ["x/a", "y/a", true]),
  ),
  single(
    "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
    "TCP",
    [policy("x", "allow-ingress-by-proto", podIs("a"), { ingress: [{ ports: [{ protocol: "TCP" }] }] })],
    tcp(80),
    probe("UDP", 80, ["*", "x/a", false]),
  ),
  {
    title: "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
    context: "TCP",
    steps: [
      step("only port 80 allowed", [apply(policy("x", "allow-ingress-port-80", {}, { ingress: [{ ports: [{ port: 80 }] }] }))], tcp(81, ["*", "x/*", false])),
      step("a second policy allows all", [apply(policy("x", "allow-ingress", {}, { ingress: [{}] }))], tcp(81)),
    ],
  },
  {
    title: "should enforce multiple egress policies with egress allow-all policy taking precedence",
    context: "TCP",
    steps: [
      step("only port 80 allowed", [apply(policy("x", "allow-egress-port-80", {}, { egress: [{ ports: [{ port: 80 }] }] }))], tcp(81, ["x/*", "*", false])),
      step("a second policy allows all", [apply(policy("x", "allow-egress", {}, { egress: [{}] }))], tcp(81)),
    ],
  },
  {
    title: "should stop enforcing policies after they are deleted",
    context: "TCP",
    steps: [
      step("deny all in and out of x", [apply(policy("x", "deny-all", all, { ingress: [], egress: [] }))], tcp(80, ["x/*", "*", false], ["*", "x/*", false])),
      step("policies deleted", [{ deleteAllPolicies: true }], tcp(80)),
    ],
  },
  single(
    "should allow egress access to server in CIDR block",
    "TCP",
    [policy("x", "allow-client-a-via-cidr-egress-rule", podIs("a"), { egress: [{ to: [{ ipBlock: { cidr: "@y/b" } }] }] })],
    tcp(80, ["x/a", "*", false], ["x/a", "y/b", true]),
  ),
  single(
    "should enforce except clause while egress access to server in CIDR block",
    "TCP",
    [policy("x", "allow-client-a-via-cidr-egress-rule", podIs("a"), { egress: [{ to: [{ ipBlock: { cidr: "@x/b/4", except: ["@x/b"] } }] }] })],
    tcp(80, ["x/a", "x/b", false]),
  ),
  {
    title: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
    context: "TCP",
    steps: [
      step("x/b excepted", [apply(policy("x", "allow-client-a-via-cidr-egress-rule", podIs("a"), { egress: [{ to: [{ ipBlock: { cidr: "@x/b/4", except: ["@x/b"] } }] }] }))], tcp(80, ["x/a", "x/b", false])),
      step(
        "policy updated to allow x/b's address only",
        [apply(policy("x", "allow-client-a-via-cidr-egress-rule", podIs("a"), { egress: [{ to: [{ ipBlock: { cidr: "@x/b" } }] }] }))],
        tcp(80, ["x/a", "*", false], ["x/a", "x/b", true]),
      ),
    ],
  },
  {
    title: "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
    context: "TCP",
    steps: [
      step("egress of x/a allowed", [apply(policy("x", "allow-egress-for-target", podIs("a"), { egress: [{}] }))], tcp(80)),
      step("ingress of x/a denied", [apply(policy("x", "deny-ingress-via-label-selector", podIs("a"), { ingress: [] }))], tcp(80, ["*", "x/a", false])),
    ],
  },
  single(
    "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
    "TCP",
    [policy("x", "deny-ingress", all, { ingress: [] }), policy("x", "allow-only-sctp-ingress-on-port-81", podIs("a"), { ingress: [{ ports: [{ port: 81, protocol: "SCTP" }] }] })],
    tcp(81, ["*", "x/*", false]),
  ),
  single(
    "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
    "TCP",
    [policy("x", "allow-only-sctp-ingress-on-port-80", podIs("a"), { ingress: [{ ports: [{ port: 80, protocol: "SCTP" }] }] })],
    tcp(81, ["*", "x/a", false]),
  ),
  single(
    "should not allow access by TCP when a policy specifies only UDP",
    "TCP",
    [policy("x", "allow-only-udp-ingress-on-port-81", podIs("a"), { ingress: [{ ports: [{ port: 81, protocol: "UDP" }] }] })],
    tcp(81, ["*", "x/a", false]),
  ),
  single(
    "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
    "TCP",
    [policy("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", podIs("a"), { ingress: [{ from: [{ namespaceSelector: nsIs("y") }] }] })],
    tcp(80, ["x/*", "x/a", false], ["z/*", "x/a", false]),
  ),
  single(
    "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
    "TCP",
    [policy("x", "allow-ns-y-match-selector-for-immutable-ns-label", podIs("a"), { egress: [{ to: [{ namespaceSelector: nsNotIn("y") }] }] })],
    tcp(80, ["x/a", "y/*", false]),
  ),
];

const udpCases: ConformanceCase[] = [defaultDenyIngress("UDP", "deny-all"), portsCase("UDP", "allow-ingress-on-port-81-ns-x"), onlyFromYaToXa("UDP")];

const sctpCases: ConformanceCase[] = [defaultDenyIngress("SCTP", "deny-all"), portsCase("SCTP", "allow-ingress-on-port-81-ns-x"), onlyFromYaToXa("SCTP")];

/** Every upstream case: the TCP context, then UDP, then SCTP. */
export const UPSTREAM_CASES: readonly ConformanceCase[] = [...tcpCases, ...udpCases, ...sctpCases];

/** A case's display name: the upstream title, prefixed with its context when that is not TCP (titles repeat across contexts). */
export function caseName(testCase: ConformanceCase): string {
  return testCase.context === "TCP" ? testCase.title : `[${testCase.context}] ${testCase.title}`;
}
