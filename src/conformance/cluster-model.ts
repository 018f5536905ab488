/**
 * The model on a live cluster: creates namespaces x, y, z and the nine pods
 * (pinned round-robin over the nodes), waits until they run, applies a
 * case's changes, resets between cases (every policy of both kinds deleted,
 * labels restored) and deletes it all at the end.
 *
 * @module
 */
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import type { AnyPolicy, Pod } from "../policy/index.ts";
import { sleep } from "../k8s/backoff.ts";
import { parseObjectKey } from "../k8s/cache.ts";
import type { KubeClient } from "../k8s/client.ts";
import { isAlreadyExists, isNotFound } from "../k8s/errors.ts";
import { PatchType } from "../k8s/client.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";
import { podAddress, podNetns } from "../probe/index.ts";
import { MODEL_NAMESPACES, MODEL_PODS, modelNamespace, modelPod, namespaceLabels, nodeForPod, podLabels, type Family } from "./model.ts";

/** The model could not be set up or changed on the cluster. */
export class ClusterModelError extends Error {
  /** Names this error class in stack traces and messages. */
  override name = "ClusterModelError";
}

interface List<T> {
  items: T[];
}

const POLICY_RESOURCES = [Resources.networkPolicies, Resources.ebpfNetworkPolicies] as const;

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new ClusterModelError(`Cannot set up the conformance model: ${what} within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/** The pod with an image for its container, which the API requires; the dev node runtime runs its own echo server whatever it names. */
function withImage(pod: Pod): V1Pod {
  return { ...pod, spec: { ...pod.spec, containers: pod.spec.containers.map((container) => ({ ...container, image: "palisade/pod-server" })) } };
}

/** Labels patch (JSON merge) that makes `current` exactly `wanted`, or undefined when it already is. */
function labelsPatch(current: Record<string, string>, wanted: Record<string, string>): Record<string, string | null> | undefined {
  const patch: Record<string, string | null> = {};
  for (const key of Object.keys(current)) if (!(key in wanted)) patch[key] = null;
  for (const [key, value] of Object.entries(wanted)) if (current[key] !== value) patch[key] = value;
  return Object.keys(patch).length === 0 ? undefined : patch;
}

/** The model's pods on the cluster: their addresses and network namespaces. */
export class ClusterModel {
  /** `ns/name` → the pod's IPs. */
  readonly addresses: Map<string, string[]>;
  /** `ns/name` → the pod's network namespace (where its prober runs). */
  readonly netns: Map<string, string>;
  /** `ns/name` → the pod's node. */
  readonly nodes: Map<string, string>;
  readonly #client: KubeClient;

  private constructor(client: KubeClient, pods: V1Pod[]) {
    this.#client = client;
    this.addresses = new Map();
    this.netns = new Map();
    this.nodes = new Map();
    for (const pod of pods) {
      const ref = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      this.addresses.set(ref, (["ipv4", "ipv6"] as const).flatMap((family) => podAddress(pod, family) ?? []));
      this.netns.set(ref, podNetns(pod));
      this.nodes.set(ref, pod.spec?.nodeName ?? "");
    }
  }

  /**
   * Creates (or reuses) the model on the cluster with its pods spread over
   * the first `nodeCount` nodes, and waits until every pod runs with an
   * address of each of `families` and its runtime recorded its network
   * namespace, where its prober will run.
   */
  static async create(client: KubeClient, nodeCount: number, families: readonly Family[], progress: (line: string) => void): Promise<ClusterModel> {
    const nodeList = await client.request<List<{ metadata?: { name?: string } }>>("GET", resourcePath(Resources.nodes));
    const nodes = nodeList.items.map((node) => node.metadata?.name ?? "").sort().slice(0, nodeCount);
    if (nodes.length < nodeCount) throw new ClusterModelError(`Cannot spread the conformance model over ${nodeCount} nodes: the cluster has ${nodes.length}`);
    for (const namespace of MODEL_NAMESPACES) {
      try {
        await client.request("POST", resourcePath(Resources.namespaces), { body: modelNamespace(namespace) });
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
      // Admission refuses pods until the controller manager has made the namespace's default ServiceAccount.
      await until(`namespace "${namespace}" got no default ServiceAccount`, 60_000, async () => {
        try {
          return await client.request<object>("GET", `/api/v1/namespaces/${namespace}/serviceaccounts/default`);
        } catch (error) {
          if (isNotFound(error)) return undefined;
          throw error;
        }
      });
    }
    for (const [index, ref] of MODEL_PODS.entries()) {
      const node = nodeForPod(index, nodes);
      const at = parseObjectKey(ref);
      let existing: V1Pod | undefined;
      try {
        existing = await client.request<V1Pod>("GET", resourcePath(Resources.pods, at));
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      if (existing !== undefined && existing.spec?.nodeName === node && existing.metadata?.deletionTimestamp === undefined) continue;
      if (existing !== undefined) {
        progress(`moving pod ${ref} to ${node}`);
        await client.request("DELETE", resourcePath(Resources.pods, at), { query: { gracePeriodSeconds: 0 } }).catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
        });
        await until(`pod "${ref}" was not deleted`, 60_000, async () => {
          try {
            await client.request("GET", resourcePath(Resources.pods, at));
            return undefined;
          } catch (error) {
            if (isNotFound(error)) return true;
            throw error;
          }
        });
      }
      await client.request("POST", resourcePath(Resources.pods, { namespace: at.namespace }), { body: withImage(modelPod(ref, node)) });
    }
    progress(`waiting for the ${MODEL_PODS.length} model pods to run`);
    const pods = await until("the model pods did not all run", 120_000, async () => {
      const lists = await Promise.all(MODEL_NAMESPACES.map((namespace) => client.request<List<V1Pod>>("GET", resourcePath(Resources.pods, { namespace }))));
      const running = lists.flatMap((list) => list.items).filter((pod) => MODEL_PODS.includes(`${pod.metadata?.namespace}/${pod.metadata?.name}`));
      const ready = running.filter((pod) => pod.status?.phase === "Running" && families.every((family) => podAddress(pod, family) !== undefined));
      return ready.length === MODEL_PODS.length ? ready : undefined;
    });
    return new ClusterModel(client, pods);
  }

  /** Creates `policy`, or replaces the policy of its kind, namespace and name (upstream's UpdatePolicy). */
  async apply(policy: AnyPolicy): Promise<void> {
    const resource = policy.kind === "NetworkPolicy" ? Resources.networkPolicies : Resources.ebpfNetworkPolicies;
    const at = { namespace: policy.metadata.namespace, name: policy.metadata.name };
    try {
      // Only the spec, unconditionally: the operator writes the status meanwhile, which a PUT of what was read would conflict with.
      await this.#client.request("PATCH", resourcePath(resource, at), { body: [{ op: "replace", path: "/spec", value: policy.spec }], contentType: PatchType.json });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.#client.request("POST", resourcePath(resource, { namespace: at.namespace }), { body: policy });
    }
  }

  /** Deletes every policy of both kinds in the model's namespaces. */
  async deleteAllPolicies(): Promise<void> {
    await Promise.all(MODEL_NAMESPACES.flatMap((namespace) => POLICY_RESOURCES.map((resource) => this.#client.request("DELETE", resourcePath(resource, { namespace })))));
  }

  /** Adds (or overwrites) labels of a model namespace. */
  async labelNamespace(namespace: string, labels: Record<string, string>): Promise<void> {
    await this.#client.request("PATCH", resourcePath(Resources.namespaces, { name: namespace }), { body: { metadata: { labels } }, contentType: PatchType.merge });
  }

  /** Adds (or overwrites) labels of model pod `ns/name`. */
  async labelPod(ref: string, labels: Record<string, string>): Promise<void> {
    await this.#client.request("PATCH", resourcePath(Resources.pods, parseObjectKey(ref)), { body: { metadata: { labels } }, contentType: PatchType.merge });
  }

  /** Back to the start of a case: no policy in x, y, z and every label as the model has it. */
  async reset(): Promise<void> {
    await this.deleteAllPolicies();
    await Promise.all([
      ...MODEL_NAMESPACES.map(async (namespace) => {
        const current = await this.#client.request<V1Namespace>("GET", resourcePath(Resources.namespaces, { name: namespace }));
        const patch = labelsPatch(current.metadata?.labels ?? {}, namespaceLabels(namespace));
        if (patch !== undefined) await this.#client.request("PATCH", resourcePath(Resources.namespaces, { name: namespace }), { body: { metadata: { labels: patch } }, contentType: PatchType.merge });
      }),
      ...MODEL_PODS.map(async (ref) => {
        const at = parseObjectKey(ref);
        const current = await this.#client.request<V1Pod>("GET", resourcePath(Resources.pods, at));
        const patch = labelsPatch(current.metadata?.labels ?? {}, podLabels(at.name));
        if (patch !== undefined) await this.#client.request("PATCH", resourcePath(Resources.pods, at), { body: { metadata: { labels: patch } }, contentType: PatchType.merge });
      }),
    ]);
  }

  /** Deletes the model's namespaces (and so its pods and policies) and waits until they are gone. */
  async destroy(): Promise<void> {
    await Promise.all(MODEL_NAMESPACES.map((name) => this.#client.request("DELETE", resourcePath(Resources.namespaces, { name })).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    })));
    await until("the model namespaces were not deleted", 120_000, async () => {
      const lists = await this.#client.request<List<V1Namespace>>("GET", resourcePath(Resources.namespaces));
      return lists.items.some((ns) => (MODEL_NAMESPACES as readonly string[]).includes(ns.metadata?.name ?? "")) ? undefined : true;
    });
  }
}
