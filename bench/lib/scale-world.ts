/**
 * The objects of a large cluster, generated without running it: namespaces,
 * Node objects nobody runs (`scale-node-NN`), pods bound to them, pods on a
 * real dev node, and policies of both APIs with the shapes real clusters
 * have (per-namespace default deny, app-to-app allows across namespaces,
 * matchExpressions, named and numbered ports, port ranges, egress to DNS,
 * ipBlock allow-lists, a few Deny rules). Pure and seeded: one seed and size
 * give the same objects, so a run can be repeated and a test can check what
 * the cluster holds against what was generated.
 *
 * @example
 * ```ts
 * const world = scaleWorld(scaleSize(1 / 100), { seed: 1, realNode: "palisade-node-1" });
 * world.pods.length; // 100
 * ```
 *
 * @module
 */
import { seededRandom } from "../../src/conformance/random-cases.ts";

/** How big a generated world is. */
export interface ScaleSize {
  namespaces: number;
  /** Node objects without a node behind them. */
  fakeNodes: number;
  /** Pods bound to the fake nodes (status written by the loader, nothing runs). */
  fakePods: number;
  /** Pods bound to the real dev node, run by its node runtime. */
  realPods: number;
  /** Policies, about half of each API. */
  policies: number;
  /** ipBlock CIDRs over all policies. */
  cidrs: number;
}

/** Issue 13's cluster: 10k pods over 100 Nodes (one real, with 100 real pods), 1k namespaces, 10k policies, 100k CIDRs. */
export const FULL_SCALE: ScaleSize = { namespaces: 1000, fakeNodes: 99, fakePods: 9900, realPods: 100, policies: 10_000, cidrs: 100_000 };

/** At most this many CIDRs in one object: 10k `/32`s are about 400 kB of JSON, inside the API server's 3 MiB request limit. */
export const MAX_CIDRS_PER_POLICY = 10_000;

/** Every fake Node's name starts so. */
export const FAKE_NODE_PREFIX = "scale-node-";

/** Every generated namespace's name starts so. */
export const NAMESPACE_PREFIX = "scale-";

/** The container ports every generated pod declares; the named ones are what named-port rules resolve. */
export const POD_PORTS = [
  { name: "http", containerPort: 8080, protocol: "TCP" },
  { name: "metrics", containerPort: 9090, protocol: "TCP" },
  { containerPort: 80, protocol: "TCP" },
] as const;

/**
 * Issue 13's numbers times `factor` (at least one of each, and the real
 * pods at least 2 so that a pair can talk).
 *
 * @example
 * ```ts
 * scaleSize(1 / 100); // { namespaces: 10, fakeNodes: 1, fakePods: 99, realPods: 2, policies: 100, cidrs: 1000 }
 * ```
 */
export function scaleSize(factor: number): ScaleSize {
  const of = (n: number, min = 1) => Math.max(min, Math.round(n * factor));
  const realPods = of(FULL_SCALE.realPods, 2);
  return {
    namespaces: of(FULL_SCALE.namespaces),
    fakeNodes: of(FULL_SCALE.fakeNodes),
    fakePods: Math.max(1, of(FULL_SCALE.fakePods + FULL_SCALE.realPods) - realPods),
    realPods,
    policies: of(FULL_SCALE.policies),
    cidrs: of(FULL_SCALE.cidrs, 0),
  };
}

/** A Kubernetes object as the loader writes it. */
export interface ScaleObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: unknown;
}

/** A pod and the status the loader gives it (fake pods only: a real pod's runtime reports its own). */
export interface ScalePod {
  object: ScaleObject;
  /** Addresses for `status.podIPs`; empty for a real pod. */
  ips: string[];
  /** Its node's InternalIP, for `status.hostIP`; empty for a real pod. */
  hostIP: string;
  real: boolean;
}

/** A fake Node and the InternalIP its status gets. */
export interface ScaleNode {
  object: ScaleObject;
  internalIP: string;
}

/** Everything a world holds, in the order the loader writes it. */
export interface ScaleWorld {
  size: ScaleSize;
  namespaces: ScaleObject[];
  nodes: ScaleNode[];
  pods: ScalePod[];
  policies: ScaleObject[];
}

/** Options of {@linkcode scaleWorld}. */
export interface ScaleWorldOptions {
  seed: number;
  /** The real dev node the real pods are bound to. */
  realNode: string;
  /** The image of the real pods, which their node runtime runs. */
  realImage?: string;
}

const TEAMS = 20;
const ENVS = ["prod", "staging", "dev"] as const;
const TIERS = ["frontend", "backend", "data"] as const;
const APPS_PER_NAMESPACE = 3;

/** 198.18.0.0/15 (RFC 2544, benchmarking): fake nodes in 198.18.0.0/16, fake pods in 198.19.0.0/16. */
function fakeNodeIp(i: number): string {
  return `198.18.${i >> 8}.${(i & 255) + 1}`;
}

function fakePodIp(i: number): string {
  return `198.19.${i >> 8}.${i & 255}`;
}

/** Allow-list CIDR `j`: three /32s out of 172.16.0.0/13, then a /28 out of 172.24.0.0/13; disjoint from each other, every dev cluster and the pods. */
function allowListCidr(j: number): string {
  const wide = j % 4 === 3;
  const addr = wide ? 0xac180000 + Math.floor(j / 4) * 16 : 0xac100000 + j;
  return `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}/${wide ? 28 : 32}`;
}

function namespaceName(i: number): string {
  return `${NAMESPACE_PREFIX}${String(i).padStart(4, "0")}`;
}

function appName(i: number): string {
  return `app-${i}`;
}

interface NamespaceShape {
  name: string;
  team: string;
  env: string;
}

/**
 * Generates the world of `size`, the same for the same seed.
 *
 * @example
 * ```ts
 * const world = scaleWorld(FULL_SCALE, { seed: 42, realNode: "palisade-node-1" });
 * world.policies.length; // 10000
 * ```
 */
export function scaleWorld(size: ScaleSize, options: ScaleWorldOptions): ScaleWorld {
  const rand = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;

  const shapes: NamespaceShape[] = Array.from({ length: size.namespaces }, (_, i) => ({ name: namespaceName(i), team: `team-${i % TEAMS}`, env: ENVS[i % ENVS.length] as string }));
  const namespaces = shapes.map((ns): ScaleObject => ({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: ns.name, labels: { team: ns.team, env: ns.env, tier: pick(TIERS) } },
  }));

  const nodes = Array.from({ length: size.fakeNodes }, (_, i): ScaleNode => ({
    object: { apiVersion: "v1", kind: "Node", metadata: { name: `${FAKE_NODE_PREFIX}${String(i + 1).padStart(2, "0")}`, labels: { "palisade.dev/scale": "fake" } } },
    internalIP: fakeNodeIp(i),
  }));

  // Pods: the real ones first, two to a namespace in the first namespaces, so that real pods meet
  // the policies of their own namespace as well as those between namespaces.
  const podCount = size.realPods + size.fakePods;
  const realNamespaces = Math.max(1, Math.min(size.namespaces, Math.ceil(size.realPods / 2)));
  const pods = Array.from({ length: podCount }, (_, i): ScalePod => {
    const real = i < size.realPods;
    const ns = shapes[real ? i % realNamespaces : i % size.namespaces] as NamespaceShape;
    const app = Math.floor(rand() * APPS_PER_NAMESPACE);
    const labels = { app: appName(app), tier: TIERS[app % TIERS.length] as string, version: rand() < 0.8 ? "v1" : "v2" };
    const fake = i - size.realPods;
    const node = nodes[fake % Math.max(1, nodes.length)];
    const nodeName = real || node === undefined ? options.realNode : node.object.metadata.name;
    return {
      real,
      ips: real ? [] : [fakePodIp(fake)],
      hostIP: real || node === undefined ? "" : node.internalIP,
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `pod-${i}`, namespace: ns.name, labels },
        spec: {
          nodeName,
          automountServiceAccountToken: false,
          containers: [{ name: "main", image: real ? (options.realImage ?? "palisade.dev/pod-server") : "none", ports: POD_PORTS.map((p) => ({ ...p })) }],
        },
      },
    };
  });

  return { size, namespaces, nodes, pods, policies: policiesOf(size, shapes, rand) };
}

const np = (namespace: string, name: string, spec: unknown): ScaleObject => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec });
const ebpf = (namespace: string, name: string, spec: unknown): ScaleObject => ({ apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name, namespace }, spec });
const ofApp = (i: number) => ({ matchLabels: { app: appName(i) } });

/**
 * The policies, round-robin over the namespaces, each namespace taking the
 * next shape of a fixed cycle; the allow-lists carry the CIDRs, spread
 * evenly and never more than {@linkcode MAX_CIDRS_PER_POLICY} in one. They are
 * NetworkPolicies (ingress and egress): the EBPFNetworkPolicy CRD allows at
 * most 32 peers per rule.
 */
function policiesOf(size: ScaleSize, shapes: NamespaceShape[], rand: () => number): ScaleObject[] {
  const cycle: ((ns: NamespaceShape, k: number) => ScaleObject)[] = [
    (ns, k) => np(ns.name, `default-deny-${k}`, { podSelector: {}, policyTypes: ["Ingress"] }),
    // app-to-app: the next app of this namespace, and the same app of the team's other namespaces, on the named port.
    (ns, k) =>
      np(ns.name, `app-allow-${k}`, {
        podSelector: ofApp(k % APPS_PER_NAMESPACE),
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [{ podSelector: ofApp((k + 1) % APPS_PER_NAMESPACE) }, { namespaceSelector: { matchLabels: { team: ns.team } }, podSelector: ofApp(k % APPS_PER_NAMESPACE) }],
            ports: [{ protocol: "TCP", port: "http" }, { protocol: "TCP", port: 80 }],
          },
        ],
      }),
    (ns, k) =>
      ebpf(ns.name, `tiers-${k}`, {
        selector: { matchExpressions: [{ key: "tier", operator: "In", values: ["frontend", "backend"] }] },
        ingress: [
          {
            from: [{ namespaceSelector: { matchExpressions: [{ key: "env", operator: "NotIn", values: ["dev"] }, { key: "team", operator: "In", values: [ns.team] }] } }],
            ports: [{ protocol: "TCP", port: 8000, endPort: 8100 }, { protocol: "TCP", port: "metrics" }],
          },
        ],
      }),
    // Egress for one app only (pods it selects may then talk to DNS and their own namespace).
    (ns, k) =>
      np(ns.name, `egress-dns-${k}`, {
        podSelector: { matchLabels: { app: appName(2), version: "v2" } },
        policyTypes: ["Egress"],
        egress: [
          { to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } }], ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }] },
          { to: [{ podSelector: {} }] },
        ],
      }),
    (ns, k) =>
      ebpf(ns.name, `monitoring-${k}`, {
        selector: {},
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "team-0" } }, podSelector: { matchExpressions: [{ key: "app", operator: "In", values: [appName(0)] }] } }], ports: [{ protocol: "TCP", port: 9090 }] }],
      }),
    (ns, k) =>
      ebpf(ns.name, `deny-dev-${k}`, {
        selector: ofApp(1),
        ingress: [{ action: "Deny", from: [{ namespaceSelector: { matchLabels: { env: "dev" } } }], ports: [{ protocol: "TCP", port: 80 }] }],
      }),
  ];
  // Deny rules are a few, not a sixth: the eighth policy of each namespace (of about nine besides the allow-lists).
  const allowShapes = cycle.slice(0, 5);
  const denyShape = cycle[5] as (ns: NamespaceShape, k: number) => ScaleObject;

  const listCount = size.cidrs === 0 ? 0 : Math.max(Math.ceil(size.cidrs / MAX_CIDRS_PER_POLICY), Math.min(Math.ceil(size.policies / 10), Math.ceil(size.cidrs / 100)));
  const plain = Math.max(0, size.policies - listCount);
  const out: ScaleObject[] = [];
  for (let k = 0; k < plain; k++) {
    const ns = shapes[k % shapes.length] as NamespaceShape;
    const round = Math.floor(k / shapes.length);
    const shape = round % 8 === 7 ? denyShape : (allowShapes[round % allowShapes.length] as (ns: NamespaceShape, k: number) => ScaleObject);
    out.push(shape(ns, k));
  }
  let cidr = 0;
  for (let k = 0; k < listCount; k++) {
    const ns = shapes[(k * 7) % shapes.length] as NamespaceShape;
    const count = Math.floor(size.cidrs / listCount) + (k < size.cidrs % listCount ? 1 : 0);
    const peers = Array.from({ length: count }, () => ({ ipBlock: { cidr: allowListCidr(cidr++) } }));
    const ports = rand() < 0.5 ? [{ protocol: "TCP", port: 443 }] : [{ protocol: "TCP", port: 8443, endPort: 8450 }];
    const rule = k % 2 === 0 ? { policyTypes: ["Ingress"], ingress: [{ from: peers, ports }] } : { policyTypes: ["Egress"], egress: [{ to: peers, ports }] };
    out.push(np(ns.name, `allow-list-${k}`, { podSelector: ofApp(k % APPS_PER_NAMESPACE), ...rule }));
  }
  return out;
}
