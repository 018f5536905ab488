/**
 * The cluster's objects in memory, for the agent's unit tests: a store read
 * through the same contract as the agent's informers
 * ({@linkcode WatchedObjects}), which numbers every change with a
 * resourceVersion as an API server would, and builders of the objects it
 * holds (Namespaces, Pods bound to a node, NetworkPolicies with a uid and a
 * generation). Each object is kept in the form the agent's informers cache
 * it in ({@linkcode cachedForm}: a pod or policy converted).
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { cachedForm } from "../../src/agent/cluster-watch.ts";
import type { WatchedKind, WatchedObjects } from "../../src/agent/cluster-watch.ts";
import type { CaughtUp } from "../../src/agent/enforcement-report.ts";
import { objectKey, parseObjectKey } from "../../src/k8s/cache.ts";
import type { NetworkPolicy } from "../../src/policy/api-types.ts";

/**
 * Objects by kind and cache key.
 *
 * @example
 * ```ts
 * const objects = new MemoryObjects();
 * const key = objects.put(pod("x/a", "n1", "10.0.0.1", { app: "web" })); // "x/a"
 * objects.position().podResourceVersion; // "1"
 * ```
 */
export class MemoryObjects implements WatchedObjects {
  readonly #objects = new Map<WatchedKind, Map<string, KubernetesObject>>();
  readonly #resourceVersions = new Map<WatchedKind, number>();
  #revision = 0;

  /** Adds or replaces an object (its kind from `kind`), stamping it with the next resourceVersion, in its cached form; returns its cache key. */
  put(obj: KubernetesObject): string {
    const kind = obj.kind as WatchedKind;
    const key = objectKey(obj);
    const stamped = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.#stamp(kind)) } };
    this.#of(kind).set(key, cachedForm(kind, stamped));
    return key;
  }

  /** Deletes an object; the deletion takes a resourceVersion too. */
  remove(kind: WatchedKind, key: string): void {
    this.#of(kind).delete(key);
    this.#stamp(kind);
  }

  get(kind: WatchedKind, key: string): KubernetesObject | undefined {
    return this.#objects.get(kind)?.get(key);
  }

  position(): CaughtUp {
    return {
      podResourceVersion: String(this.#resourceVersions.get("Pod") ?? 0),
      namespaceResourceVersion: String(this.#resourceVersions.get("Namespace") ?? 0),
      pods: this.#of("Pod").size,
      namespaces: this.#of("Namespace").size,
    };
  }

  #stamp(kind: WatchedKind): number {
    this.#resourceVersions.set(kind, ++this.#revision);
    return this.#revision;
  }

  #of(kind: WatchedKind): Map<string, KubernetesObject> {
    let objects = this.#objects.get(kind);
    if (objects === undefined) {
      objects = new Map();
      this.#objects.set(kind, objects);
    }
    return objects;
  }
}

/** A Namespace object. */
export function namespace(name: string, labels: Record<string, string> = {}): KubernetesObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

/** A Running Pod object `namespace/name` bound to `nodeName`, with one IP and a container port 80 named `http`. */
export function pod(key: string, nodeName: string, ip: string, labels: Record<string, string>): KubernetesObject {
  const { namespace, name } = parseObjectKey(key);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace, name, labels, uid: `uid-${key}` },
    spec: { nodeName, containers: [{ name: "main", image: "none", ports: [{ name: "http", containerPort: 80 }] }] },
    status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
  } as KubernetesObject;
}

/** A NetworkPolicy object `namespace/name` with a uid and a generation. */
export function networkPolicy(key: string, generation: number, spec: NetworkPolicy["spec"]): NetworkPolicy {
  const { namespace, name } = parseObjectKey(key);
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace, name, uid: `uid-${key}`, generation }, spec };
}
