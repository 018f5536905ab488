/**
 * Real packets between a cluster's pods: from one pod to another, or
 * between every ordered pair of the Running pods of some namespaces, each
 * probe sent by the prober in the source pod's network namespace to the
 * target pod's address, where the pod's own servers answer.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { parseObjectKey } from "../k8s/cache.ts";
import type { KubeClient } from "../k8s/client.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";
import { podAddress, podNetns, ProbeTargetError } from "./pod-network.ts";
import { ProberPool, type ProberPoolOptions } from "./prober-pool.ts";
import type { ProbeProtocol, ProbeReason } from "./send-probe.ts";

/** What one probe sends. */
export interface ProbeTarget {
  port: number;
  protocol: ProbeProtocol;
  family: "ipv4" | "ipv6";
  timeoutMs: number;
}

/** How one probe ended. */
export interface ProbeResult {
  allowed: boolean;
  reason: ProbeReason;
}

/** One ordered pair's probe: pods as `namespace/name`. */
export interface PairProbe extends ProbeResult {
  from: string;
  to: string;
}

/** How probes get into the pods: the probers' options. */
export type ProbeEnvironment = ProberPoolOptions;

async function probeOnce(pool: ProberPool, netns: string, host: string, target: ProbeTarget): Promise<ProbeResult> {
  const reason = await pool.probe(netns, { protocol: target.protocol, host, port: target.port, timeoutMs: target.timeoutMs });
  return { allowed: reason === "connected", reason };
}

function getPod(client: KubeClient, ref: string): Promise<V1Pod> {
  return client.request<V1Pod>("GET", resourcePath(Resources.pods, parseObjectKey(ref)));
}

/**
 * Probes from pod `from` to pod `to` (both `namespace/name`); throws
 * {@linkcode ProbeTargetError} when `to` has no address of the family or
 * `from` no namespace to probe from.
 *
 * @example
 * ```ts
 * const result = await probePods(client, "x/a", "y/b", { port: 80, protocol: "TCP", family: "ipv4", timeoutMs: 1000 }, { sctpBinary });
 * ```
 */
export async function probePods(client: KubeClient, from: string, to: string, target: ProbeTarget, environment: ProbeEnvironment): Promise<ProbeResult> {
  const [source, destination] = await Promise.all([getPod(client, from), getPod(client, to)]);
  const host = podAddress(destination, target.family);
  if (host === undefined) throw new ProbeTargetError(`Cannot probe: pod "${to}" has no ${target.family} address (status.podIPs)`);
  const netns = podNetns(source);
  const pool = new ProberPool(environment);
  try {
    return await probeOnce(pool, netns, host, target);
  } finally {
    pool.close();
  }
}

/**
 * Probes every ordered pair of distinct Running pods in `namespaces`, all at
 * once, through one prober per source pod; pairs sorted by source.
 *
 * @example
 * ```ts
 * const pairs = await probeMatrix(client, ["x", "y"], { port: 80, protocol: "TCP", family: "ipv4", timeoutMs: 1000 }, { sctpBinary });
 * ```
 */
export async function probeMatrix(client: KubeClient, namespaces: readonly string[], target: ProbeTarget, environment: ProbeEnvironment): Promise<PairProbe[]> {
  const lists = await Promise.all(namespaces.map((namespace) => client.request<{ items: V1Pod[] }>("GET", resourcePath(Resources.pods, { namespace }))));
  const pods = lists
    .flatMap((list) => list.items)
    .filter((pod) => pod.status?.phase === "Running" && podAddress(pod, target.family) !== undefined)
    .map((pod) => ({ label: `${pod.metadata?.namespace}/${pod.metadata?.name}`, netns: podNetns(pod), host: podAddress(pod, target.family) as string }))
    .sort((a, b) => a.label.localeCompare(b.label));
  const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));
  const pool = new ProberPool(environment);
  try {
    return await Promise.all(pairs.map(async ({ from, to }) => ({ from: from.label, to: to.label, ...(await probeOnce(pool, from.netns, to.host, target)) })));
  } finally {
    pool.close();
  }
}
