/**
 * The upstream e2e model: namespaces x, y and z, labelled only with
 * `kubernetes.io/metadata.name` (which the API server sets), and pods a, b
 * and c in each, labelled `pod=<name>`, each declaring ports 80 and 81 on
 * TCP, UDP and SCTP named `serve-<port>-<proto>`.
 *
 * @module
 */
import type { ContainerPort, Namespace, Pod, PolicyProtocol } from "../policy/index.ts";
import type { NamedPort, PodInfo, World } from "../policy/index.ts";
import { parseObjectKey } from "../k8s/cache.ts";

/** The model's namespaces. */
export const MODEL_NAMESPACES = ["x", "y", "z"] as const;

/** The model's pod names, the same in every namespace. */
export const MODEL_POD_NAMES = ["a", "b", "c"] as const;

/** The ports every model pod serves. */
export const MODEL_PORTS = [80, 81] as const;

/** The protocols every model pod serves its ports on. */
export const MODEL_PROTOCOLS: readonly PolicyProtocol[] = ["TCP", "UDP", "SCTP"];

/** The label key the API server puts on every namespace. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** Every model pod as `ns/name`, in row order of the truth tables (x/a, x/b, … z/c). */
export const MODEL_PODS: readonly string[] = MODEL_NAMESPACES.flatMap((ns) => MODEL_POD_NAMES.map((name) => `${ns}/${name}`));

/** An IP family of a run. */
export type Family = "ipv4" | "ipv6";

/** The labels a model namespace has before any case changes them. */
export function namespaceLabels(namespace: string): Record<string, string> {
  return { [NAMESPACE_NAME_LABEL]: namespace };
}

/** The labels a model pod has before any case changes them. */
export function podLabels(name: string): Record<string, string> {
  return { pod: name };
}

/** The container ports of every model pod: `serve-80-tcp`, `serve-80-udp`, … `serve-81-sctp`. */
export function modelContainerPorts(): ContainerPort[] {
  return MODEL_PORTS.flatMap((port) => MODEL_PROTOCOLS.map((protocol) => ({ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol })));
}

/** The Namespace object of a model namespace. */
export function modelNamespace(namespace: string): Namespace {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } };
}

/** The Pod object of model pod `ns/name`, pinned to `nodeName`. */
export function modelPod(ref: string, nodeName: string): Pod {
  const { namespace, name } = parseObjectKey(ref);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: podLabels(name) },
    spec: { nodeName, containers: [{ name: "serve", ports: modelContainerPorts() }] },
  };
}

/** The node of the i-th model pod: round-robin over `nodes`, so with two nodes neighbours in the table sit on different nodes. */
export function nodeForPod(index: number, nodes: readonly string[]): string {
  const node = nodes[index % nodes.length];
  if (node === undefined) throw new RangeError("Cannot place the model pods: the cluster has no nodes");
  return node;
}

/** The model as the cluster holds it now: labels and addresses of every pod, labels of every namespace. */
export interface ModelState {
  namespaces: Map<string, Record<string, string>>;
  pods: Map<string, { labels: Record<string, string>; ips: string[] }>;
}

/** The model with its initial labels and the given addresses (`ns/name` → IPs). */
export function initialState(addresses: ReadonlyMap<string, string[]>): ModelState {
  return {
    namespaces: new Map(MODEL_NAMESPACES.map((ns) => [ns, namespaceLabels(ns)])),
    pods: new Map(MODEL_PODS.map((ref) => [ref, { labels: podLabels(parseObjectKey(ref).name), ips: addresses.get(ref) ?? [] }])),
  };
}

/** The reference evaluator's world for `state` and the given policies. */
export function modelWorld(state: ModelState, policies: World["policies"]): World {
  const namedPorts: NamedPort[] = modelContainerPorts().map((p) => ({ name: p.name ?? "", port: p.containerPort, protocol: p.protocol ?? "TCP" }));
  const pods = new Map<string, PodInfo>();
  for (const [ref, pod] of state.pods) {
    const { namespace, name } = parseObjectKey(ref);
    pods.set(ref, { namespace, name, labels: pod.labels, ips: pod.ips, namedPorts });
  }
  const namespaces = new Map([...state.namespaces].map(([name, labels]) => [name, { name, labels }]));
  return { namespaces, pods, policies, hostIPs: [] };
}

/** Addresses shaped like the dev cluster's (10.244.N.0/24 and fd00:10:244:N::/64 per node), for tests without a cluster. */
export function sampleAddresses(nodes = 2): Map<string, string[]> {
  return new Map(MODEL_PODS.map((ref, i) => {
    const node = (i % nodes) + 1;
    const host = 10 + i;
    return [ref, [`10.244.${node}.${host}`, `fd00:10:244:${node}::${host.toString(16)}`]];
  }));
}
