/**
 * The agent's view of the cluster: what the reconcile loop reads of the
 * Kubernetes API ({@linkcode WatchedObjects}: namespaces, pods and both
 * policy kinds as last seen, and how far the watch has got), and its real
 * adapter, {@linkcode ClusterWatch}: one informer per kind, plus the
 * PalisadeIdentity table when identity numbers come from the operator. The
 * reconcile loop's unit tests read objects from memory through the same
 * contract, without an API server.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import { cachedPod, cachedPolicy, identityFields, identityInformer, namespaceFields } from "../api-objects/index.ts";
import type { Cache } from "../k8s/cache.ts";
import { objectKey } from "../k8s/cache.ts";
import type { KubeClient } from "../k8s/client.ts";
import { Informer } from "../k8s/informer.ts";
import type { Logger } from "../k8s/logger.ts";
import { Resources } from "../k8s/resource.ts";
import type { ResourceRef } from "../k8s/resource.ts";
import type { PalisadeIdentity } from "../policy/api-types.ts";
import type { PolicyKind } from "../policy/compiler.ts";
import type { CaughtUp } from "./enforcement-report.ts";

/** The kinds of object the agent compiles policy from. */
export type WatchedKind = "Namespace" | "Pod" | PolicyKind;

/** What the reconcile loop reads of the cluster's objects. */
export interface WatchedObjects {
  /**
   * The object of `kind` with cache key `key` (`namespace/name`, or `name` for a Namespace) as last seen, in
   * its cached form ({@linkcode cachedForm}: a pod is a `CachedPod`, a policy a `CachedPolicy`); `undefined` once it is gone.
   */
  get(kind: WatchedKind, key: string): KubernetesObject | undefined;
  /** The resourceVersions up to which pods and namespaces are seen, and how many of each there are at them. */
  position(): CaughtUp;
}

/** What {@linkcode ClusterWatch.start} tells of changes. Called on the informers' loop: they should only queue work. */
export interface ClusterWatchHandlers {
  /** The object of `kind` under cache key `key` was added, changed or deleted. */
  objectChanged(kind: WatchedKind, key: string): void;
  /** PalisadeIdentity objects numbering these identity keys were added, changed or deleted. */
  identityObjectsChanged(keys: string[]): void;
}

/** Options of a {@linkcode ClusterWatch}. */
export interface ClusterWatchOptions {
  client: KubeClient;
  logger: Logger;
  /** Whether to watch the cluster's identity table (PalisadeIdentity objects) too. */
  identities: boolean;
}

/** What is watched of each kind, and what of each object is cached: a namespace's fields the policy layer reads, a pod or policy converted. */
const WATCHED: Record<WatchedKind, { resource: ResourceRef; transform: (obj: KubernetesObject) => KubernetesObject }> = {
  Namespace: { resource: Resources.namespaces, transform: namespaceFields },
  Pod: { resource: Resources.pods, transform: cachedPod },
  NetworkPolicy: { resource: Resources.networkPolicies, transform: cachedPolicy },
  EBPFNetworkPolicy: { resource: Resources.ebpfNetworkPolicies, transform: cachedPolicy },
};

/**
 * An object of `kind` as the agent's informers cache it: a Namespace
 * narrowed to the fields the policy layer reads, a pod or policy converted
 * (`CachedPod`, `CachedPolicy`).
 *
 * @example
 * ```ts
 * const cached = cachedForm("NetworkPolicy", obj) as CachedPolicy;
 * cached.converted.ok; // whether the policy is accepted
 * ```
 */
export function cachedForm(kind: WatchedKind, obj: KubernetesObject): KubernetesObject {
  return WATCHED[kind].transform(obj);
}

/**
 * Whether an update of a policy changed nothing the policy layer reads: its
 * cached forms are equal but for the resourceVersion (the operator's status
 * writes, each of which would otherwise cost every agent a commit). Pods and
 * namespaces are not filtered: their resourceVersion is the watch position
 * the report gives `palisade wait`, so each of their events leads to a commit.
 */
export function unchangedPolicy(old: KubernetesObject, obj: KubernetesObject): boolean {
  const unversioned = (o: KubernetesObject) => ({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
  return isDeepStrictEqual(unversioned(old), unversioned(obj));
}

/**
 * Informers over the watched kinds (and the identity table), as
 * {@linkcode WatchedObjects}.
 *
 * @example
 * ```ts
 * const watch = new ClusterWatch({ client, logger, identities: true });
 * watch.start({ objectChanged: (kind, key) => queue.add(`${kind}/${key}`), identityObjectsChanged: (keys) => note(keys) });
 * await watch.waitForSync(signal);
 * watch.get("Pod", "x/a");
 * await watch.stop();
 * ```
 */
export class ClusterWatch implements WatchedObjects {
  /** The PalisadeIdentity objects, indexed by key, when watched. */
  readonly identityTable: Cache<PalisadeIdentity> | undefined;
  readonly #informers: Record<WatchedKind, Informer<KubernetesObject>>;
  readonly #identityInformer: Informer<PalisadeIdentity> | undefined;
  readonly #events = new Map<string, number>();

  constructor(options: ClusterWatchOptions) {
    const informer = (kind: WatchedKind) => new Informer<KubernetesObject>({ client: options.client, logger: options.logger, ...WATCHED[kind] });
    this.#informers = { Namespace: informer("Namespace"), Pod: informer("Pod"), NetworkPolicy: informer("NetworkPolicy"), EBPFNetworkPolicy: informer("EBPFNetworkPolicy") };
    this.#identityInformer = options.identities ? identityInformer(options.client, options.logger, identityFields) : undefined;
    this.identityTable = this.#identityInformer?.cache;
  }

  /** Watch events received per kind (the identity table's not counted). */
  get events(): ReadonlyMap<string, number> {
    return this.#events;
  }

  /** Starts every informer; `handlers` hear of every change from the first list on. */
  start(handlers: ClusterWatchHandlers): void {
    for (const [kind, informer] of Object.entries(this.#informers) as [WatchedKind, Informer<KubernetesObject>][]) {
      const count = (): void => void this.#events.set(kind, (this.#events.get(kind) ?? 0) + 1);
      const changed = (obj: KubernetesObject): void => {
        count();
        handlers.objectChanged(kind, objectKey(obj));
      };
      const policy = kind === "NetworkPolicy" || kind === "EBPFNetworkPolicy";
      informer.addHandlers({
        onAdd: changed,
        onUpdate: (old, obj) => (policy && unchangedPolicy(old, obj) ? count() : changed(obj)),
        onDelete: changed,
      });
      informer.start();
    }
    if (this.#identityInformer !== undefined) {
      const changed = (obj: PalisadeIdentity): void => handlers.identityObjectsChanged([obj.spec.key]);
      this.#identityInformer.addHandlers({ onAdd: changed, onUpdate: (old, obj) => handlers.identityObjectsChanged([old.spec.key, obj.spec.key]), onDelete: changed });
      this.#identityInformer.start();
    }
  }

  /** Resolves true once every informer listed, false if `signal` aborted first. */
  async waitForSync(signal: AbortSignal): Promise<boolean> {
    const synced = await Promise.all(this.#all().map((informer) => informer.waitForSync(signal)));
    return synced.every(Boolean);
  }

  /** Stops every informer. */
  async stop(): Promise<void> {
    await Promise.all(this.#all().map((informer) => informer.stop()));
  }

  get(kind: WatchedKind, key: string): KubernetesObject | undefined {
    return this.#informers[kind].cache.get(key);
  }

  position(): CaughtUp {
    const { Pod: pods, Namespace: namespaces } = this.#informers;
    return { podResourceVersion: pods.resourceVersion, namespaceResourceVersion: namespaces.resourceVersion, pods: pods.cache.size, namespaces: namespaces.cache.size };
  }

  #all(): Informer<KubernetesObject>[] {
    const informers = Object.values(this.#informers);
    return this.#identityInformer === undefined ? informers : [...informers, this.#identityInformer as unknown as Informer<KubernetesObject>];
  }
}
