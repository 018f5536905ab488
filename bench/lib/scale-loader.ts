/**
 * Writes a {@linkcode ScaleWorld} into an API server: namespaces, fake Nodes
 * (their InternalIP through the status subresource), pods (a fake pod's
 * Running status and addresses through the status subresource, since no
 * kubelet runs it; a real pod's status is its node runtime's), then the
 * policies, with a bounded number of requests in flight, reporting
 * progress. Then it waits until the real pods run.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { bounded, KubeApiError, PatchType, resourcePath, Resources } from "../../src/k8s/index.ts";
import type { KubeClient } from "../../src/k8s/index.ts";
import type { ScaleObject, ScaleWorld } from "./scale-world.ts";

/** Options of {@linkcode loadScaleWorld}. */
export interface ScaleLoadOptions {
  /** Requests in flight at once. */
  concurrency?: number;
  /** Called with a line now and then: what is being written, how far. */
  progress?: (line: string) => void;
}

/** What the API server gave back for each policy: what a report must list to be caught up. */
export interface LoadedPolicy {
  kind: string;
  namespace: string;
  name: string;
  generation: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * POSTs `body` to `path`, retrying while admission refuses the pod for its
 * namespace's default ServiceAccount, which the controller manager creates
 * shortly after the namespace.
 */
async function create<T>(client: KubeClient, path: string, body: unknown): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.request<T>("POST", path, { body });
    } catch (e) {
      const waitingForAccount = e instanceof KubeApiError && e.code === 403 && /serviceaccount/i.test(e.message);
      if (!waitingForAccount || attempt >= 100) throw e;
      await sleep(100);
    }
  }
}

function pathOf(object: ScaleObject): string {
  const kinds: Record<string, (typeof Resources)[keyof typeof Resources]> = {
    Namespace: Resources.namespaces,
    Node: Resources.nodes,
    Pod: Resources.pods,
    NetworkPolicy: Resources.networkPolicies,
    EBPFNetworkPolicy: Resources.ebpfNetworkPolicies,
  };
  const ref = kinds[object.kind];
  if (ref === undefined) throw new Error(`Cannot load a ${object.kind}: the scale loader writes namespaces, nodes, pods and policies`);
  return resourcePath(ref, { namespace: object.metadata.namespace });
}

/**
 * Writes `world` and waits until its real pods run; returns each policy's
 * generation as created.
 *
 * @example
 * ```ts
 * const policies = await loadScaleWorld(client, world, { concurrency: 16, progress: (l) => process.stderr.write(`${l}\n`) });
 * ```
 */
export async function loadScaleWorld(client: KubeClient, world: ScaleWorld, options: ScaleLoadOptions = {}): Promise<LoadedPolicy[]> {
  const limit = options.concurrency ?? 16;
  const say = options.progress ?? (() => {});
  const phase = async <T>(what: string, items: readonly T[], work: (item: T) => Promise<void>) => {
    const started = performance.now();
    let done = 0;
    await bounded(items, limit, async (item) => {
      await work(item);
      if (++done % 500 === 0) say(`${what}: ${done} of ${items.length}`);
    });
    say(`${what}: ${items.length} written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  };

  await phase("namespaces", world.namespaces, async (ns) => void (await create(client, pathOf(ns), ns)));
  await phase("nodes", world.nodes, async (node) => {
    await create(client, pathOf(node.object), node.object);
    await client.request("PATCH", resourcePath(Resources.nodes, { name: node.object.metadata.name, subresource: "status" }), {
      body: { status: { addresses: [{ type: "InternalIP", address: node.internalIP }] } },
      contentType: PatchType.merge,
    });
  });
  await phase("pods", world.pods, async (pod) => {
    await create(client, pathOf(pod.object), pod.object);
    if (pod.real) return;
    const { name, namespace } = pod.object.metadata;
    await client.request("PATCH", resourcePath(Resources.pods, { namespace, name, subresource: "status" }), {
      body: { status: { phase: "Running", hostIP: pod.hostIP, podIP: pod.ips[0], podIPs: pod.ips.map((ip) => ({ ip })), conditions: [{ type: "Ready", status: "True" }] } },
      contentType: PatchType.merge,
    });
  });
  const policies: LoadedPolicy[] = [];
  await phase("policies", world.policies, async (policy) => {
    const created = await create<{ metadata: { generation: number } }>(client, pathOf(policy), policy);
    policies.push({ kind: policy.kind, namespace: policy.metadata.namespace ?? "", name: policy.metadata.name, generation: created.metadata.generation });
  });
  await waitForRealPods(client, world, say);
  return policies;
}

/** Waits until every real pod of `world` is Running with its addresses. */
async function waitForRealPods(client: KubeClient, world: ScaleWorld, say: (line: string) => void): Promise<void> {
  const real = new Set(world.pods.filter((p) => p.real).map((p) => `${p.object.metadata.namespace}/${p.object.metadata.name}`));
  const node = (world.pods.find((p) => p.real)?.object.spec as { nodeName?: string } | undefined)?.nodeName;
  if (node === undefined) return;
  const deadline = Date.now() + 60_000 + 2_000 * real.size;
  for (;;) {
    const pods = (await client.request<{ items: V1Pod[] }>("GET", resourcePath(Resources.pods), { query: { fieldSelector: `spec.nodeName=${node}` } })).items;
    const running = pods.filter((p) => real.has(`${p.metadata?.namespace}/${p.metadata?.name}`) && p.status?.phase === "Running" && (p.status.podIPs?.length ?? 0) > 0).length;
    if (running === real.size) return say(`real pods: ${running} running on ${node}`);
    if (Date.now() > deadline) throw new Error(`Cannot load the scale world: ${running} of ${real.size} real pods run on node "${node}" after waiting`);
    await sleep(500);
  }
}
