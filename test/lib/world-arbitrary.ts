/**
 * fast-check generators of random worlds (namespaces, pods with labels,
 * IPv4/IPv6 addresses and named ports, NetworkPolicies and
 * EBPFNetworkPolicies with deny rules, audit mode, ipBlock/except, named
 * ports and endPort) and of packets between their pods and outside
 * addresses. Small vocabularies on purpose: collisions between selectors,
 * labels, ports and CIDRs are where semantics get interesting.
 *
 * @module
 */
import fc from "fast-check";
import type {
  AnyPolicy,
  HttpRule,
  IPBlock,
  LabelSelector,
  LabelSelectorRequirement,
  PolicyPeer,
  PolicyPort,
  PolicyProtocol,
  PolicyType,
  TlsRule,
} from "../../src/policy/api-types.ts";
import type { NamedPort, Packet, PacketProtocol, PodInfo, World } from "../../src/policy/world.ts";

const NAMESPACES = ["x", "y", "z"];
const POD_NAMES = ["a", "b", "c", "d", "e"];
const LABEL_VALUES: Record<string, string[]> = { app: ["web", "db"], tier: ["1", "2"] };
const NS_LABEL_VALUES: Record<string, string[]> = { env: ["prod", "dev"], team: ["t1"] };
const NAMED_PORTS: NamedPort[][] = [
  [{ name: "http", port: 80, protocol: "TCP" }],
  [{ name: "http", port: 8080, protocol: "TCP" }],
  [{ name: "dns", port: 53, protocol: "UDP" }, { name: "http", port: 81, protocol: "TCP" }],
  [{ name: "assoc", port: 9000, protocol: "SCTP" }],
  [],
];
const PORT_NUMBERS = [53, 80, 81, 8080, 9000];
const PORT_NAMES = ["http", "dns", "assoc", "missing"];
const PROTOCOLS: PolicyProtocol[] = ["TCP", "UDP", "SCTP"];
/** Node addresses: ingress from them is always allowed. */
export const HOST_IPS = ["10.99.0.1", "fd00:99::1"];
/** Addresses outside every pod, some inside generated CIDRs. */
export const EXTERNAL_IPS = ["10.0.1.200", "10.0.7.7", "192.0.2.10", "10.99.0.1", "fd00:0:0:1::c8", "fd00:7::7", "2001:db8::10", "fd00:99::1"];

const labelsArb = (vocab: Record<string, string[]>) =>
  fc.record(
    Object.fromEntries(Object.entries(vocab).map(([k, vs]) => [k, fc.constantFrom(...vs)])),
    { requiredKeys: [] },
  ) as fc.Arbitrary<Record<string, string>>;

const requirementArb = (vocab: Record<string, string[]>): fc.Arbitrary<LabelSelectorRequirement> =>
  fc.constantFrom(...Object.keys(vocab)).chain((key) =>
    fc.oneof(
      fc.record({
        key: fc.constant(key),
        operator: fc.constantFrom("In" as const, "NotIn" as const),
        values: fc.subarray(vocab[key] ?? [], { minLength: 1 }),
      }),
      fc.record({ key: fc.constant(key), operator: fc.constantFrom("Exists" as const, "DoesNotExist" as const) }),
    ),
  );

const selectorArb = (vocab: Record<string, string[]>): fc.Arbitrary<LabelSelector> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant({}) },
    { weight: 3, arbitrary: fc.record({ matchLabels: labelsArb(vocab) }, { requiredKeys: [] }) },
    {
      weight: 2,
      arbitrary: fc.record(
        { matchLabels: labelsArb(vocab), matchExpressions: fc.array(requirementArb(vocab), { maxLength: 2 }) },
        { requiredKeys: ["matchExpressions"] },
      ),
    },
  );

const nsSelectorArb: fc.Arbitrary<LabelSelector> = fc.oneof(
  selectorArb(NS_LABEL_VALUES),
  fc.constantFrom(...NAMESPACES).map((name) => ({ matchLabels: { "kubernetes.io/metadata.name": name } })),
);

function ipBlockArb(podIps: string[]): fc.Arbitrary<IPBlock> {
  // CIDRs around pod addresses, with holes that carve some pods out.
  const v4 = podIps.filter((ip) => !ip.includes(":"));
  const v6 = podIps.filter((ip) => ip.includes(":"));
  const v4Block = fc.constantFrom(...(v4.length ? v4 : ["10.0.0.1"])).chain((ip) => {
    const [a, b, c] = ip.split(".");
    return fc.record({
      cidr: fc.constantFrom(`${a}.0.0.0/8`, `${a}.${b}.0.0/16`, `${a}.${b}.${c}.0/24`, "0.0.0.0/0"),
      except: fc.subarray([`${ip}/32`, `${a}.${b}.${c}.0/28`, `${a}.${b}.${c}.128/25`]),
    });
  });
  const v6Block = fc.constantFrom(...(v6.length ? v6 : ["fd00::1"])).chain((ip) =>
    fc.record({
      cidr: fc.constantFrom("fd00::/16", "fd00::/64", "::/0"),
      except: fc.subarray([`${ip}/128`, "fd00::/124"]),
    }),
  );
  return fc.oneof(v4Block, v6Block).map((block) => {
    const bits = Number(block.cidr.split("/")[1]);
    // An except must be strictly inside its cidr: keep only longer prefixes of the same family.
    const except = block.except.filter((e) => e.includes(":") === block.cidr.includes(":") && Number(e.split("/")[1]) > bits);
    return except.length ? { cidr: block.cidr, except } : { cidr: block.cidr };
  });
}

function peerArb(podIps: string[]): fc.Arbitrary<PolicyPeer> {
  return fc.oneof(
    fc.record({ podSelector: selectorArb(LABEL_VALUES) }),
    fc.record({ namespaceSelector: nsSelectorArb }),
    fc.record({ podSelector: selectorArb(LABEL_VALUES), namespaceSelector: nsSelectorArb }),
    fc.record({ ipBlock: ipBlockArb(podIps) }),
  );
}

const portArb: fc.Arbitrary<PolicyPort> = fc.oneof(
  fc.record({ protocol: fc.constantFrom(...PROTOCOLS) }, { requiredKeys: [] }),
  fc.record({ protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom(...PORT_NUMBERS) }, { requiredKeys: ["port"] }),
  fc.record({ protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom(...PORT_NAMES) }, { requiredKeys: ["port"] }),
  fc
    .record({ protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom(...PORT_NUMBERS), span: fc.constantFrom(0, 1, 2, 100, 8000) })
    .map(({ protocol, port, span }) => ({ protocol, port, endPort: Math.min(65535, port + span) })),
);

/** Connection limits of a rule: none, either kind or both. */
const tcpLimitsArb = fc.constantFrom(
  {},
  { maxConnectionsPerSource: 3 },
  { newConnectionsPerSecond: { average: 1, burst: 2 } },
  { maxConnectionsPerSource: 100, newConnectionsPerSecond: { average: 10, burst: 10 } },
);

/** `http` lists rules draw from: each test kind once (method, path exact/prefix/regex, host, headers). */
export const HTTP_LISTS: HttpRule[][] = [
  [{ method: "GET", path: { prefix: "/public/" } }],
  [{ method: "POST", path: { exact: "/orders" } }],
  [{ path: { prefix: "/admin" } }],
  [{ headers: [{ name: "X-Tenant", exact: "blue" }] }, { headers: [{ name: "X-Debug", present: true }] }],
  [{ host: { suffix: "shop.example" } }, { path: { regex: "/a+/.*" } }],
];

/** `tls` rules draw from: exact names, a wildcard, names differing in case. */
export const TLS_RULES: TlsRule[] = [
  { serverNames: ["api.stripe.com"] },
  { serverNames: ["*.github.com", "github.com"] },
  { serverNames: ["API.Shop.Example", "*.internal.example"] },
];

/** A rule's `http` or `tls`, or neither (a rule has at most one of them). */
const judgedArb = fc.option(fc.oneof(fc.constantFrom(...HTTP_LISTS).map((http) => ({ http })), fc.constantFrom(...TLS_RULES).map((tls) => ({ tls }))), { freq: 2 });

function rulesArb(podIps: string[], peerKey: "from" | "to", ebpf: boolean) {
  const rule = fc
    .record(
      {
        [peerKey]: fc.array(peerArb(podIps), { maxLength: 2 }),
        ports: fc.array(portArb, { maxLength: 2 }),
        ...(ebpf && { action: fc.constantFrom("Allow" as const, "Deny" as const), strict: fc.boolean(), limits: tcpLimitsArb, judged: judgedArb }),
      },
      { requiredKeys: [] },
    )
    // http and tls need ports, all TCP: a rule drawing one has its ports made so. tcp is valid on Allow rules whose ports are all TCP only.
    .map(({ strict, limits, judged, ...rest }) => {
      const rule = judged ? { ...rest, ports: (rest.ports?.length ? rest.ports : [{ port: 80 }]).map((port) => ({ ...port, protocol: "TCP" as const })), ...judged } : rest;
      const tcpOnly = (rule.ports ?? []).every((port) => (port.protocol ?? "TCP") === "TCP");
      const tcp = { ...(strict && { strict: true }), ...limits };
      return Object.keys(tcp).length > 0 && rule.action !== "Deny" && tcpOnly ? { ...rule, tcp } : rule;
    });
  return fc.array(rule, { maxLength: 2 });
}

const policyTypesArb: fc.Arbitrary<PolicyType[] | undefined> = fc.constantFrom(
  undefined,
  ["Ingress"] as PolicyType[],
  ["Egress"] as PolicyType[],
  ["Ingress", "Egress"] as PolicyType[],
);

function policyArb(index: number, podIps: string[]): fc.Arbitrary<AnyPolicy> {
  const common = {
    namespace: fc.constantFrom(...NAMESPACES),
    selector: selectorArb(LABEL_VALUES),
    policyTypes: policyTypesArb,
  };
  const np = fc
    .record({ ...common, ingress: rulesArb(podIps, "from", false), egress: rulesArb(podIps, "to", false) }, { requiredKeys: ["namespace", "selector"] })
    .map((p): AnyPolicy => ({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: `np-${index}`, namespace: p.namespace },
      spec: {
        podSelector: p.selector,
        ...(p.policyTypes && { policyTypes: p.policyTypes }),
        ...(p.ingress && { ingress: p.ingress }),
        ...(p.egress && { egress: p.egress }),
      },
    }));
  const ebpf = fc
    .record(
      {
        ...common,
        ingress: rulesArb(podIps, "from", true),
        egress: rulesArb(podIps, "to", true),
        mode: fc.constantFrom("Enforce" as const, "Audit" as const),
      },
      { requiredKeys: ["namespace", "selector"] },
    )
    .map((p): AnyPolicy => ({
      apiVersion: "palisade.dev/v1alpha1",
      kind: "EBPFNetworkPolicy",
      metadata: { name: `ebpf-${index}`, namespace: p.namespace },
      spec: {
        selector: p.selector,
        ...(p.policyTypes && { policyTypes: p.policyTypes }),
        ...(p.ingress && { ingress: p.ingress }),
        ...(p.egress && { egress: p.egress }),
        ...(p.mode && { mode: p.mode }),
      },
    }));
  return fc.oneof(np, ebpf);
}

const podArb = (index: number): fc.Arbitrary<PodInfo> =>
  fc
    .record({
      namespace: fc.constantFrom(...NAMESPACES),
      labels: labelsArb(LABEL_VALUES),
      subnet: fc.integer({ min: 0, max: 2 }),
      ports: fc.constantFrom(...NAMED_PORTS),
      dualStack: fc.boolean(),
    })
    .map(({ namespace, labels, subnet, ports, dualStack }) => ({
      namespace,
      name: POD_NAMES[index] ?? `p${index}`,
      labels: { pod: POD_NAMES[index] ?? `p${index}`, ...labels },
      ips: dualStack ? [`10.0.${subnet}.${index + 1}`, `fd00:0:0:${subnet}::${index + 1}`] : [`10.0.${subnet}.${index + 1}`],
      namedPorts: ports,
    }));

/** A random world with up to `maxPods` pods and `maxPolicies` policies. */
export function worldArb(maxPods = 5, maxPolicies = 4): fc.Arbitrary<World> {
  return fc
    .record({
      nsLabels: fc.tuple(...NAMESPACES.map(() => labelsArb(NS_LABEL_VALUES))),
      pods: fc.integer({ min: 1, max: maxPods }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => podArb(i)))),
    })
    .chain(({ nsLabels, pods }) => {
      const podIps = pods.flatMap((p) => p.ips);
      return fc.integer({ min: 0, max: maxPolicies }).chain((n) =>
        fc.tuple(...Array.from({ length: n }, (_, i) => policyArb(i, podIps))).map((policies) => ({
          namespaces: new Map(
            NAMESPACES.map((name, i) => [name, { name, labels: { ...nsLabels[i], "kubernetes.io/metadata.name": name } }]),
          ),
          pods: new Map(pods.map((p) => [`${p.namespace}/${p.name}`, p])),
          policies,
          hostIPs: HOST_IPS,
        })),
      );
    });
}

/** Random packets in a world: pod to pod, from outside (incl. the node) to a pod, pod to outside. */
export function packetArb(world: World): fc.Arbitrary<Packet> {
  const pods = [...world.pods.values()];
  return fc
    .record({
      v6: fc.boolean(),
      src: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pods) }, { weight: 1, arbitrary: fc.constantFrom(...EXTERNAL_IPS) }),
      dst: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pods) }, { weight: 1, arbitrary: fc.constantFrom(...EXTERNAL_IPS) }),
      protocol: fc.constantFrom<PacketProtocol>("TCP", "TCP", "UDP", "SCTP", "ICMP"),
      port: fc.constantFrom(53, 79, 80, 81, 82, 8080, 8081, 9000, 12345),
    })
    .filter(({ src, dst }) => typeof src === "object" || typeof dst === "object")
    .map(({ v6, src, dst, protocol, port }) => {
      const pick = (end: PodInfo | string) => {
        const ips = typeof end === "string" ? [end] : end.ips;
        return ips.find((ip) => ip.includes(":") === v6);
      };
      let s = pick(src);
      let d = pick(dst);
      if (!s || !d) {
        // Fall back to IPv4, which every pod has; outside ends are picked again of that family.
        s = typeof src === "string" ? EXTERNAL_IPS[0] : src.ips[0];
        d = typeof dst === "string" ? EXTERNAL_IPS[2] : dst.ips[0];
      }
      return { src: { ip: s ?? "" }, dst: { ip: d ?? "" }, protocol, port: protocol === "ICMP" ? 0 : port };
    })
    .filter((p) => p.src.ip !== p.dst.ip);
}
