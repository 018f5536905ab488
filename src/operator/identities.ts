/**
 * Cluster-wide security identities, allocated by the leading operator: it
 * runs the policy compiler's ipcache half ({@linkcode IpcacheCompiler}) over
 * every namespace, pod and policy, numbers each label-derived key it needs
 * with {@linkcode OperatorIdentityAllocator}, creates a PalisadeIdentity
 * object per number, and deletes objects whose key has gone unused for the
 * grace period, so a pod that flaps keeps its number. Agents only read the
 * objects. Keys of addresses alone (policy CIDRs) are each node's own and
 * never become objects.
 *
 * Bad pods never stall the others: a key whose object the API cannot hold
 * (see `identityObjectProblem`) is not created (each agent numbers it on its
 * own) and the pods carrying it get a Warning Event, as do pods whose fields
 * Palisade cannot read; one failed create does not hold back the rest.
 *
 * @module
 */
import { HostIpsByPod } from "../policy/host-ips.ts";
import { PodAddressClaims, creationTime } from "../policy/pod-address-claims.ts";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import { namespaceFromObject, podFromObject, policyFromObject } from "../api-objects/index.ts";
import { collectGarbage } from "../k8s/collect-garbage.ts";
import { identityObjectProblem } from "../crd/identity-rules.ts";
import type { IdentityObjectProblem } from "../crd/identity-rules.ts";
import type { KubeClient } from "../k8s/client.ts";
import { bounded } from "../k8s/bounded.ts";
import { NAMESPACE_INDEX, objectKey, parseObjectKey } from "../k8s/cache.ts";
import { isAlreadyExists, isNotFound } from "../k8s/errors.ts";
import type { EventRecorder } from "../k8s/events.ts";
import type { Informer } from "../k8s/informer.ts";
import type { Logger } from "../k8s/logger.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";
import { WorkQueue } from "../k8s/workqueue.ts";
import type { PalisadeIdentity, PalisadeIdentitySpec } from "../policy/api-types.ts";
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
  /** Where Warning Events about pods go. */
  events: EventRecorder;
  /** See {@linkcode DEFAULT_IDENTITY_GRACE_MS}. */
  graceMs: number;
}

/** Reasons of the Warning Events about pods. */
export const PodWarningReason = {
  /** A field Palisade reads is not what it accepts (e.g. an address it cannot parse): policy leaves the pod out. */
  invalid: "Invalid",
  /** The pod's identity cannot be a PalisadeIdentity: each node numbers it on its own. */
  nodeLocalIdentity: "NodeLocalIdentity",
} as const;

interface PodWarning {
  pod: KubernetesObject;
  reason: string;
  note: string;
}

/** Another writer holds a number this table gave out; the table is rebuilt from the API and the work retried. */
export class IdentityConflictError extends Error {
  override name = "IdentityConflictError";
}

type InputKind = "Namespace" | "Pod" | PolicyKind;

const COMMIT = "commit";
/** PalisadeIdentity creates the leader has in flight at once. */
const CREATES_IN_FLIGHT = 16;
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
  #compiler = new IpcacheCompiler({ identities: this.#table, prefixEntries: false });
  #hostIps = new HostIpsByPod();
  #addressClaims = new PodAddressClaims();
  #rebuild = true;
  /** The table was rebuilt from every input: the commit after it is followed by one full garbage collection. */
  #collectAfterCommit = false;
  /** Warnings found while processing, recorded before the work item ends. */
  #warnings: PodWarning[] = [];
  /** The last warning recorded about each pod, by pod key, so a pod is told once per problem. */
  readonly #warned = new Map<string, string>();
  /** Keys whose object cannot exist, already logged. */
  readonly #nodeLocalKeys = new Set<string>();

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
    try {
      if (this.#rebuild) this.#rebuildTable();
      if (key === COMMIT) {
        await this.#commit(signal);
        if (this.#collectAfterCommit) {
          // Feeding every input to a fresh compiler allocated several times what it keeps (see collect-garbage.ts).
          this.#collectAfterCommit = false;
          collectGarbage(this.#log, "the identity table rebuild's garbage");
        }
        return;
      }
      if (key === COLLECT) return await this.#collect(signal);
      if (key.startsWith(IDENTITY)) {
        this.#syncIdentity(key.slice(IDENTITY.length));
        return;
      }
      const slash = key.indexOf("/");
      this.#syncInput(key.slice(0, slash) as InputKind, key.slice(slash + 1));
      this.#queue?.add(COMMIT);
    } finally {
      await this.#recordWarnings();
    }
  }

  /** Records the warnings found, each pod's once per problem. */
  async #recordWarnings(): Promise<void> {
    for (const { pod, reason, note } of this.#warnings.splice(0)) {
      const podKey = objectKey(pod);
      if (this.#warned.get(podKey) === note) continue;
      this.#warned.set(podKey, note);
      await this.#options.events.record(pod, "Warning", reason, "Identify", note);
    }
  }

  /** A fresh table from the objects that exist and a fresh compiler fed every input: at each term's start and after a conflict. */
  #rebuildTable(): void {
    const existing: IdentityEntry[] = [];
    for (const obj of this.#options.identities.cache.list()) {
      const id = identityNumberOf(obj);
      if (id !== undefined) existing.push({ id, key: obj.spec.key });
    }
    this.#table = new OperatorIdentityAllocator(existing);
    this.#compiler = new IpcacheCompiler({ identities: this.#table, prefixEntries: false });
    this.#hostIps = new HostIpsByPod();
    this.#addressClaims = new PodAddressClaims();
    for (const [kind, informer] of Object.entries(this.#inputs) as [InputKind, Informer<KubernetesObject>][]) {
      for (const key of informer.cache.keys()) this.#syncInput(kind, key);
    }
    this.#rebuild = false;
    this.#collectAfterCommit = true;
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
        if (obj === undefined) this.#warned.delete(key);
        if (obj !== undefined && converted?.ok) {
          const { pod, hostIPs } = converted.value;
          const claim = this.#addressClaims.claim(key, creationTime(obj), pod.ips);
          for (const { ip, owner } of claim.taken) {
            const note = `Cannot enforce policy for Pod "${key}": status.podIPs[${pod.ips.indexOf(ip)}].ip "${ip}" is already the address of pod "${owner}", created before it; policy leaves that address out`;
            this.#warnings.push({ pod: obj, reason: PodWarningReason.invalid, note });
          }
          this.#setHostIps(key, hostIPs);
          this.#compiler.upsertPod({ ...pod, ips: claim.owned });
          for (const other of claim.changed) this.#syncInput("Pod", other);
        } else {
          if (obj !== undefined && converted?.ok === false) {
            const problems = converted.errors.map((e) => (e.field === "" ? e.detail : `${e.field} ${e.detail}`)).join("; ");
            this.#warnings.push({ pod: obj, reason: PodWarningReason.invalid, note: `Cannot enforce policy for Pod "${key}": ${problems}; policy leaves it out` });
          }
          this.#setHostIps(key, []);
          this.#compiler.deletePod(namespace, name);
          for (const other of this.#addressClaims.release(key).changed) this.#syncInput("Pod", other);
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

  /**
   * Compiles what changed, then creates the objects of numbers in use that
   * have none, except those the API cannot hold. A failed create does not
   * stop the others; the first failure is thrown after them, for a retry.
   */
  async #commit(signal: AbortSignal): Promise<void> {
    this.#compiler.commit();
    const cache = this.#options.identities.cache;
    const missing = this.#table.missing(({ id, key }) => cache.get(String(id))?.spec.key === key);
    const creatable = missing.flatMap(({ id, key }) => {
      const object = identityObject(id, key);
      const problem = identityObjectProblem(object.spec);
      if (problem === undefined) return [{ id, key, object }];
      this.#warnNodeLocal(key, object.spec, problem);
      return [];
    });
    let failure: unknown;
    // Together: the keys one change makes new (a relabelled namespace's pods) then reach each agent at once, for
    // one commit, not one API round trip apart, a commit each. A conflict starts no further create.
    await bounded(creatable, CREATES_IN_FLIGHT, async ({ id, key, object }) => {
      try {
        await this.#options.client.request("POST", resourcePath(Resources.palisadeIdentities), { body: object, signal });
        this.#log.info({ identity: id, key }, "Identity allocated");
      } catch (e) {
        if (!isAlreadyExists(e)) {
          failure ??= e;
          return;
        }
        const existing = await this.#options.client.request<PalisadeIdentity>("GET", resourcePath(Resources.palisadeIdentities, { name: String(id) }), { signal });
        if (existing.spec.key === key) return;
        this.#rebuild = true;
        throw new IdentityConflictError(`Cannot create PalisadeIdentity "${id}": it exists for another key; reloading the identity table`, { cause: e });
      }
    });
    for (const key of this.#nodeLocalKeys) if (!missing.some((entry) => entry.key === key)) this.#nodeLocalKeys.delete(key);
    this.#updateMetrics();
    if (failure !== undefined) throw failure;
  }

  /** A key no object can hold: logged once, and each pod carrying it told why it has no cluster-wide number. */
  #warnNodeLocal(key: string, spec: PalisadeIdentitySpec, problem: IdentityObjectProblem): void {
    if (!this.#nodeLocalKeys.has(key)) {
      this.#nodeLocalKeys.add(key);
      this.#log.warn({ key: key.slice(0, 200), ...problem }, "Identity too large for a PalisadeIdentity: each node numbers it on its own");
    }
    if (spec.kind !== "pod" || spec.namespace === undefined) return;
    const field = problem.field === "namespaceLabels" ? `metadata.labels of namespace "${spec.namespace}"` : problem.field === "namedPorts" ? "spec.containers[].ports" : "metadata.labels";
    const what = problem.field === "namedPorts" ? "named ports" : problem.field === "key" ? "characters of labels" : "labels";
    for (const pod of this.#options.pods.cache.byIndex(NAMESPACE_INDEX, spec.namespace)) {
      if (!isDeepStrictEqual(pod.metadata?.labels ?? {}, spec.labels ?? {})) continue;
      const note = `Cannot give Pod "${objectKey(pod)}" a cluster-wide identity: ${field} has ${problem.size} ${what}, more than the ${problem.limit} a PalisadeIdentity holds; each node numbers the pod on its own`;
      this.#warnings.push({ pod, reason: PodWarningReason.nodeLocalIdentity, note });
    }
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
