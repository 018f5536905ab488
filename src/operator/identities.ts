/**
 * Cluster-wide security identities, allocated by the leading operator: it
 * runs the policy compiler's ipcache half ({@linkcode IpcacheCompiler}) over
 * every namespace, pod and policy, numbers each key it needs with
 * {@linkcode OperatorIdentityAllocator}, creates a PalisadeIdentity object
 * per number, and deletes objects whose key has gone unused for the grace
 * period, so a pod that flaps keeps its number. Agents only read the objects.
 *
 * @module
 */
import { HostIpsByPod } from "../policy/host-ips.ts";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { namespaceFromObject, podFromObject, policyFromObject } from "../api-objects/index.ts";
import type { KubeClient } from "../k8s/client.ts";
import { objectKey, parseObjectKey } from "../k8s/cache.ts";
import { isAlreadyExists, isNotFound } from "../k8s/errors.ts";
import type { Informer } from "../k8s/informer.ts";
import type { Logger } from "../k8s/logger.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";
import { WorkQueue } from "../k8s/workqueue.ts";
import type { PalisadeIdentity } from "../policy/api-types.ts";
import { IpcacheCompiler } from "../policy/ipcache-compiler.ts";
import type { PolicyKind } from "../policy/normalized-policy.ts";
import { identityNumberOf, identityObject } from "../policy/identity-object.ts";
import { OperatorIdentityAllocator } from "./identity-allocator.ts";
import type { IdentityEntry } from "./identity-allocator.ts";
import type { OperatorMetrics } from "./metrics.ts";

/** How long an identity's key must go unused before its object is deleted, unless told otherwise. */
export const DEFAULT_IDENTITY_GRACE_MS = 30_000;

/** What the identity controller reads and writes. */
export interface IdentityControllerOptions {
  client: KubeClient;
  logger: Logger;
  metrics: OperatorMetrics;
  namespaces: Informer<KubernetesObject>;
  pods: Informer<V1Pod>;
  networkPolicies: Informer<KubernetesObject>;
  policies: Informer<KubernetesObject>;
  identities: Informer<PalisadeIdentity>;
  /** See {@linkcode DEFAULT_IDENTITY_GRACE_MS}. */
  graceMs: number;
}

/** Another writer holds a number this table gave out; the table is rebuilt from the API and the work retried. */
export class IdentityConflictError extends Error {
  override name = "IdentityConflictError";
}

type InputKind = "Namespace" | "Pod" | PolicyKind;

const COMMIT = "commit";
const COLLECT = "collect";
const IDENTITY = "PalisadeIdentity/";

/**
 * Keeps the PalisadeIdentity objects in step with what the cluster needs,
 * while this replica leads. Handlers are wired once; work happens only
 * inside {@linkcode IdentityController.run}.
 *
 * @example
 * ```ts
 * const identities = new IdentityController({ client, logger, metrics, namespaces, pods, networkPolicies, policies, identities: informer, graceMs: 30_000 });
 * await identities.run(leadershipSignal); // after the informers synced
 * ```
 */
export class IdentityController {
  readonly #options: IdentityControllerOptions;
  readonly #log: Logger;
  readonly #inputs: Record<InputKind, Informer<KubernetesObject>>;
  #queue: WorkQueue<string> | undefined;
  #table = new OperatorIdentityAllocator([]);
  #compiler = new IpcacheCompiler({ identities: this.#table });
  #hostIps = new HostIpsByPod();
  #rebuild = true;

  constructor(options: IdentityControllerOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#inputs = {
      Namespace: options.namespaces,
      Pod: options.pods as Informer<KubernetesObject>,
      NetworkPolicy: options.networkPolicies,
      EBPFNetworkPolicy: options.policies,
    };
    for (const [kind, informer] of Object.entries(this.#inputs) as [InputKind, Informer<KubernetesObject>][]) {
      const enqueue = (obj: KubernetesObject): void => this.#queue?.add(`${kind}/${objectKey(obj)}`);
      informer.addHandlers({ onAdd: enqueue, onUpdate: (_, obj) => enqueue(obj), onDelete: enqueue });
    }
    const enqueueIdentity = (obj: PalisadeIdentity): void => this.#queue?.add(`${IDENTITY}${obj.metadata.name}`);
    options.identities.addHandlers({ onAdd: enqueueIdentity, onUpdate: (_, obj) => enqueueIdentity(obj), onDelete: enqueueIdentity });
  }

  /** One leadership term, once every informer synced: allocate and collect until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const queue = new WorkQueue<string>({ name: "identities", logger: this.#log, baseDelayMs: 50, maxDelayMs: 10_000 });
    this.#queue = queue;
    this.#rebuild = true;
    const stop = (): void => queue.shutdown();
    signal.addEventListener("abort", stop, { once: true });
    // Collection is checked a few times per grace period, at most every 5 s.
    const timer = setInterval(() => queue.add(COLLECT), Math.max(100, Math.min(5_000, this.#options.graceMs / 4)));
    queue.add(COMMIT);
    try {
      await queue.runWorkers(1, (key) => (signal.aborted ? Promise.resolve() : this.#process(key, signal)));
    } finally {
      clearInterval(timer);
      signal.removeEventListener("abort", stop);
      if (this.#queue === queue) this.#queue = undefined;
    }
  }

  async #process(key: string, signal: AbortSignal): Promise<void> {
    if (this.#rebuild) this.#rebuildTable();
    if (key === COMMIT) return this.#commit(signal);
    if (key === COLLECT) return this.#collect(signal);
    if (key.startsWith(IDENTITY)) {
      this.#syncIdentity(key.slice(IDENTITY.length));
      return;
    }
    const slash = key.indexOf("/");
    this.#syncInput(key.slice(0, slash) as InputKind, key.slice(slash + 1));
    this.#queue?.add(COMMIT);
  }

  /** A fresh table from the objects that exist and a fresh compiler fed every input: at each term's start and after a conflict. */
  #rebuildTable(): void {
    const existing: IdentityEntry[] = [];
    for (const obj of this.#options.identities.cache.list()) {
      const id = identityNumberOf(obj);
      if (id !== undefined) existing.push({ id, key: obj.spec.key });
    }
    this.#table = new OperatorIdentityAllocator(existing);
    this.#compiler = new IpcacheCompiler({ identities: this.#table });
    this.#hostIps = new HostIpsByPod();
    for (const [kind, informer] of Object.entries(this.#inputs) as [InputKind, Informer<KubernetesObject>][]) {
      for (const key of informer.cache.keys()) this.#syncInput(kind, key);
    }
    this.#rebuild = false;
    this.#log.info({ identities: existing.length }, "Identity table loaded");
  }

  #syncIdentity(name: string): void {
    const id = identityNumberOf({ metadata: { name } });
    if (id === undefined) return;
    const obj = this.#options.identities.cache.get(name);
    if (obj === undefined) {
      this.#table.forget(id);
      // A number still in use is created again by the commit.
      this.#queue?.add(COMMIT);
      return;
    }
    const changed = this.#table.observe(id, obj.spec.key);
    if (changed === "conflict") {
      this.#log.warn({ identity: id }, `Identity ${id} was created by another writer for another key; reloading the identity table`);
      this.#rebuild = true;
      this.#queue?.add(COMMIT);
      return;
    }
    if (changed.length > 0) {
      this.#compiler.identitiesChanged(changed);
      this.#queue?.add(COMMIT);
    }
  }

  #syncInput(kind: InputKind, key: string): void {
    const obj = this.#inputs[kind].cache.get(key);
    const { namespace, name } = parseObjectKey(key);
    switch (kind) {
      case "Namespace": {
        const converted = obj === undefined ? undefined : namespaceFromObject(obj);
        if (converted?.ok) this.#compiler.upsertNamespace(converted.value);
        else this.#compiler.deleteNamespace(key);
        return;
      }
      case "Pod": {
        const converted = obj === undefined ? undefined : podFromObject(obj);
        if (converted?.ok) {
          this.#setHostIps(key, converted.value.hostIPs);
          this.#compiler.upsertPod(converted.value.pod);
        } else {
          this.#setHostIps(key, []);
          this.#compiler.deletePod(namespace, name);
        }
        return;
      }
      default: {
        const converted = obj === undefined ? undefined : policyFromObject(obj);
        // As in the agent, an invalid edit leaves the last valid generation in force (and its identities in use).
        if (converted?.ok) this.#compiler.upsertPolicy(converted.value);
        else if (obj === undefined) this.#compiler.deletePolicy(kind, namespace, name);
      }
    }
  }

  #setHostIps(key: string, ips: string[]): void {
    const all = this.#hostIps.set(key, ips);
    if (all) this.#compiler.setHostIPs(all);
  }

  /** Compiles what changed, then creates the objects of numbers in use that have none. */
  async #commit(signal: AbortSignal): Promise<void> {
    this.#compiler.commit();
    const cache = this.#options.identities.cache;
    const missing = this.#table.missing(({ id, key }) => cache.get(String(id))?.spec.key === key);
    for (const { id, key } of missing) {
      try {
        await this.#options.client.request("POST", resourcePath(Resources.palisadeIdentities), { body: identityObject(id, key), signal });
        this.#log.info({ identity: id, key }, "Identity allocated");
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        const existing = await this.#options.client.request<PalisadeIdentity>("GET", resourcePath(Resources.palisadeIdentities, { name: String(id) }), { signal });
        if (existing.spec.key === key) continue;
        this.#rebuild = true;
        throw new IdentityConflictError(`Cannot create PalisadeIdentity "${id}": it exists for another key; reloading the identity table`, { cause: e });
      }
    }
    this.#updateMetrics();
  }

  /** Deletes the objects of numbers unused for the grace period (only the exact object seen, by uid). */
  async #collect(signal: AbortSignal): Promise<void> {
    const cache = this.#options.identities.cache;
    for (const { id, key } of this.#table.collectible(this.#options.graceMs)) {
      const obj = cache.get(String(id));
      if (obj === undefined || obj.spec.key !== key) continue;
      try {
        await this.#options.client.request("DELETE", resourcePath(Resources.palisadeIdentities, { name: String(id) }), {
          body: { apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid: obj.metadata.uid } },
          signal,
        });
        this.#log.info({ identity: id, key }, "Identity collected: unused for the grace period");
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    this.#updateMetrics();
  }

  #updateMetrics(): void {
    this.#options.metrics.setIdentities(this.#table.inUse, this.#table.size - this.#table.inUse);
  }
}
