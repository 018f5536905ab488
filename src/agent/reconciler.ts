/**
 * One node's reconciliation, one step at a time: an object's latest state
 * (read through {@linkcode WatchedObjects}) into the policy compiler, identity
 * numbers that changed, and a commit that writes the compiler's diff to the
 * datapath, attaches and detaches pod interfaces in order
 * ({@linkcode PodAttachments}) and updates the node report
 * ({@linkcode EnforcementReport}). The first commit is a full sync
 * (`replaceAll`) against what the datapath already holds, so a restarted
 * agent re-adopts its pinned state without dropping traffic; later commits
 * write diffs.
 *
 * It has no queue and no timer: {@linkcode ReconcileLoop} decides when each
 * step runs, and unit tests call the steps directly.
 *
 * Identity numbers come from the operator's PalisadeIdentity objects when an
 * identity table is given, so every node agrees; a key without an object
 * yet is pending (see {@linkcode PolicyCompiler.pendingIdentityKeys}) and the
 * report does not claim to have caught up while any is. Without a table this
 * node numbers identities itself.
 *
 * A policy that fails validation is refused, in one place (see
 * {@linkcode Reconciler.sync}): the generation last accepted, if any, stays
 * enforced and reported; nothing else changes; the refusal is logged once per
 * generation, naming the object and the field.
 *
 * A desired state whose policy entries do not fit `pal_policy` is not
 * written in part: the endpoints that fit stay fully programmed, the others
 * fail closed (see {@linkcode fitPolicyMap}), the commit succeeds (no
 * retry), and the report says so until the state fits again.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { namespaceFromObject } from "../api-objects/index.ts";
import type { CachedPod, CachedPolicy } from "../api-objects/index.ts";
import { failClosed, fitPolicyMap, MAP_NAMES } from "../datapath/index.ts";
import { threadCpuTime } from "../datapath/native.ts";
import type { ApplyResult, PolicyFit } from "../datapath/index.ts";
import type { Cache } from "../k8s/cache.ts";
import { parseObjectKey } from "../k8s/cache.ts";
import type { Logger } from "../k8s/logger.ts";
import type { MapFull } from "../k8s/node-report.ts";
import { Histogram } from "../k8s/prometheus.ts";
import type { PalisadeIdentity } from "../policy/api-types.ts";
import type { EndpointState } from "../policy/desired-state.ts";
import { PolicyCompiler } from "../policy/compiler.ts";
import type { PolicyKind } from "../policy/compiler.ts";
import type { HttpView } from "../policy/http-view.ts";
import { HostIpsByPod } from "../policy/host-ips.ts";
import { PodAddressClaims, creationTime } from "../policy/pod-address-claims.ts";
import { LocalIdentityAllocator } from "../policy/identity.ts";
import { cidrIdentityKey } from "../policy/identity-key.ts";
import { MAX_IDENTITY } from "../policy/identity-object.ts";
import type { PolicyError } from "../policy/validate.ts";
import type { PodInfo } from "../policy/world.ts";
import type { AgentDatapath } from "./agent-datapath.ts";
import { ClusterIdentityAllocator, nodeLocalIdentities } from "./cluster-identities.ts";
import type { WatchedKind, WatchedObjects } from "./cluster-watch.ts";
import { EnforcementReport } from "./enforcement-report.ts";
import type { ReportFailureReason, ReportWriter } from "./enforcement-report.ts";
import { COMMIT_STAGE_BUCKETS, COMMIT_STAGES, CPU_STAGES } from "./metrics.ts";
import type { CommitStage, CpuStage } from "./metrics.ts";
import { PodAttachments } from "./pod-attachments.ts";
import type { PodInterfaceLookup } from "./pod-interface.ts";

/** Options of a {@linkcode Reconciler}. */
export interface ReconcilerOptions {
  /** The Node reconciled for: only its pods become endpoints. */
  nodeName: string;
  /** The cluster's objects as last seen. */
  objects: WatchedObjects;
  /** The cluster's identity table (PalisadeIdentity objects, indexed by key); absent, this node numbers identities itself. */
  identityTable?: Cache<PalisadeIdentity>;
  datapath: AgentDatapath;
  /** Finds a local pod's host-side interface from its IP. */
  podInterface: PodInterfaceLookup;
  writeReport: ReportWriter;
  logger: Logger;
  /**
   * Publishes what the node's proxy judges HTTP requests by, whenever it changed; called before the
   * commit's map writes, so the proxy knows a rule before the datapath steers a flow by it.
   */
  publishHttpView?: (view: HttpView) => void;
  /** Called when identity keys may have new numbers: {@linkcode Reconciler.syncIdentities} should run before the next commit. */
  onIdentitiesChanged: () => void;
  /** Asks for `kind/key` to be synced again: a pod whose owned addresses changed because another pod came or went. */
  resync: (kind: WatchedKind, key: string) => void;
}

/** What the compiler holds after the last commit, for the flow log and the metrics. */
export type CompiledReads = Pick<PolicyCompiler, "podOfEndpoint" | "rule" | "stateCounts" | "pendingIdentityKeys">;

/** A local pod's interface is not there yet; its key is retried with backoff. */
export class PodInterfaceNotReadyError extends Error {
  override name = "PodInterfaceNotReadyError";
}

/**
 * The cached pod with the addresses it owns: the cached object itself when it owns all it claims (nearly always),
 * which the compiler then keeps, so the pod is held once (10k pods: 1.6 MB of copies).
 */
function withIps(pod: PodInfo, owned: string[]): PodInfo {
  return owned.length === pod.ips.length && owned.every((ip, i) => ip === pod.ips[i]) ? pod : { ...pod, ips: owned };
}

function writeCounts(result: ApplyResult): Record<string, number> {
  const { policyUpserts, endpointUpserts, ipcacheUpserts, policyRemovals, endpointRemovals, ipcacheRemovals } = result;
  return { policyUpserts, endpointUpserts, ipcacheUpserts, policyRemovals, endpointRemovals, ipcacheRemovals };
}

/**
 * The steps of a node's reconciliation.
 *
 * @example
 * ```ts
 * const reconciler = new Reconciler({ nodeName: "n1", objects, datapath, podInterface, writeReport, logger, onIdentitiesChanged: () => {}, resync: () => {} });
 * await reconciler.sync("Pod", "x/a");
 * await reconciler.commit({ drained: true }); // the full sync; later commits write diffs
 * await reconciler.writeReport(signal);
 * ```
 */
export class Reconciler {
  readonly #nodeName: string;
  readonly #objects: WatchedObjects;
  readonly #datapath: AgentDatapath;
  readonly #podInterface: PodInterfaceLookup;
  readonly #log: Logger;
  readonly #onIdentitiesChanged: () => void;
  readonly #resync: (kind: WatchedKind, key: string) => void;
  readonly #identities: ClusterIdentityAllocator | undefined;
  readonly #compiler: PolicyCompiler;
  readonly #attachments: PodAttachments;
  readonly #report: EnforcementReport;
  /** Host addresses learned from host-network pods, by pod key. */
  readonly #hostIps = new HostIpsByPod();
  /** Which pod owns each pod address: a later pod whose status claims a running pod's address does not get it. */
  readonly #addressClaims = new PodAddressClaims();
  /** The refused generation of each policy (`kind/namespace/name`) as `uid/generation`, so each refusal is logged once. */
  readonly #refused = new Map<string, string>();
  /** Identity keys whose number may have changed since the compiler last heard. */
  readonly #changedIdentities = new Set<string>();
  readonly #stages = Object.fromEntries(COMMIT_STAGES.map((stage) => [stage, new Histogram(COMMIT_STAGE_BUCKETS)])) as Record<CommitStage, Histogram>;
  readonly #cpu = Object.fromEntries(CPU_STAGES.map((stage) => [stage, new Histogram(COMMIT_STAGE_BUCKETS)])) as Record<CpuStage, Histogram>;
  /** Milliseconds spent in {@linkcode sync} since the last commit. */
  #syncMs = 0;
  #fullSyncDone = false;
  /** Policy entries the map holds after the last write. */
  #policyEntriesWritten = 0;
  /** Set while the desired state does not fit `pal_policy`. */
  #mapFull: MapFull | undefined;
  /** Pods failed closed by the last commit, because their policy entries did not fit. */
  #failedClosed = new Set<string>();
  readonly #publishHttpViewTo: ((view: HttpView) => void) | undefined;
  /** The HTTP view last published, as JSON. */
  #publishedHttpView: string | undefined;

  constructor(options: ReconcilerOptions) {
    this.#nodeName = options.nodeName;
    this.#objects = options.objects;
    this.#datapath = options.datapath;
    this.#podInterface = options.podInterface;
    this.#log = options.logger;
    this.#onIdentitiesChanged = options.onIdentitiesChanged;
    this.#resync = options.resync;
    this.#publishHttpViewTo = options.publishHttpView;
    // Numbers this node gave earlier runs are still in its pinned maps: they
    // are not handed to other keys, and a policy prefix gets its own back, so a
    // restart neither lets a number mean two keys nor rewrites every CIDR.
    const pinned = options.datapath.readIpcache().map(({ cidr, identity }) => ({ id: identity, key: cidrIdentityKey(cidr) }));
    if (options.identityTable !== undefined) {
      this.#identities = new ClusterIdentityAllocator(options.identityTable, nodeLocalIdentities(pinned), (keys) => this.identityObjectsChanged(keys));
    }
    this.#compiler = new PolicyCompiler({ nodeName: options.nodeName, identities: this.#identities ?? new LocalIdentityAllocator({ last: MAX_IDENTITY, inUse: pinned }) });
    this.#attachments = new PodAttachments(options.datapath, (pod) => this.#endpointOf(pod), options.logger);
    this.#report = new EnforcementReport(options.nodeName, options.writeReport, options.logger);
  }

  /** What the compiler holds after the last commit. */
  get compiled(): CompiledReads {
    return this.#compiler;
  }

  /** What does not fit `pal_policy` since the last commit; `undefined` when everything does. */
  get mapFull(): MapFull | undefined {
    return this.#mapFull;
  }

  /** Failed report writes since start, by reason. */
  get reportWriteFailures(): Readonly<Record<ReportFailureReason, number>> {
    return this.#report.failures;
  }

  /** How long each stage of the commits took. */
  get commitStages(): Readonly<Record<CommitStage, Histogram>> {
    return this.#stages;
  }

  /** How much CPU time this thread spent in the stages of the commits that never pause. */
  get commitCpu(): Readonly<Record<CpuStage, Histogram>> {
    return this.#cpu;
  }

  /**
   * Hands the latest state of one object to the compiler (its deletion, if
   * it is gone); a local pod's interface is found and attached, or released.
   * Takes effect at the next {@linkcode commit}.
   *
   * A policy that fails validation is refused: the generation of it the
   * compiler last took (if any) stays enforced, since a bad edit must not
   * open what the policy closed, and stays the one the report lists, so the
   * operator's Programmed condition and `palisade wait` see that this node
   * has not taken the refused one (the operator's Accepted condition and
   * Event say why). No other policy is touched. Each problem is logged as an
   * error naming the object and the field, once per refused generation.
   * A Namespace that fails keeps its last labels; a Pod that fails is
   * enforced as if deleted.
   *
   * @throws {PodInterfaceNotReadyError} when a local pod's interface is not there yet (retry later).
   */
  async sync(kind: WatchedKind, key: string): Promise<void> {
    const started = performance.now();
    const obj = this.#objects.get(kind, key);
    try {
      switch (kind) {
        case "Namespace":
          this.#syncNamespace(key, obj);
          break;
        case "Pod":
          // The pod and policy informers' transforms (see cachedForm) cache each converted.
          await this.#syncPod(key, obj as CachedPod | undefined);
          break;
        default:
          this.#syncPolicy(kind, key, obj as CachedPolicy | undefined);
      }
    } finally {
      this.#syncMs += performance.now() - started;
    }
  }

  /**
   * PalisadeIdentity objects numbering `keys` changed, or this node released
   * a number a key was waiting for: the keys whose number changed are noted
   * for {@linkcode syncIdentities}, and `onIdentitiesChanged` is called.
   */
  identityObjectsChanged(keys: readonly string[]): void {
    let changed = false;
    for (const key of keys) {
      if (this.#identities?.changed(key) === false) continue;
      this.#changedIdentities.add(key);
      changed = true;
    }
    if (changed) this.#onIdentitiesChanged();
  }

  /** Hands the identity keys noted since the last call to the compiler; takes effect at the next {@linkcode commit}. */
  syncIdentities(): void {
    this.#compiler.identitiesChanged(this.#changedIdentities);
    this.#changedIdentities.clear();
  }

  /**
   * Writes everything synced so far to the datapath (the first time as a
   * full sync), attaches and detaches pod interfaces, and updates what the
   * node report says ({@linkcode writeReport} writes it). `drained` says
   * whether every change delivered so far was synced before this commit:
   * only then does the report move its resourceVersions.
   *
   * A diff is written while its new entries fit beside the old ones;
   * otherwise the whole state is compared with the maps, fitted to
   * `pal_policy` first if it does not fit at all.
   *
   * @throws when the maps cannot be written; the next commit compares them with the whole state.
   */
  async commit(options: { drained: boolean; receivedAt?: number }): Promise<void> {
    const started = performance.now();
    const cpuStarted = threadCpuTime();
    const stage = (name: CommitStage, ms: number): void => this.#stages[name].observe(Math.max(0, ms) / 1000);
    const cpuStage = (name: CpuStage, fromNs: number, toNs: number): void => this.#cpu[name].observe((toNs - fromNs) / 1e9);
    if (options.receivedAt !== undefined) stage("wait", started - options.receivedAt - this.#syncMs);
    stage("sync", this.#syncMs);
    const syncMs = this.#syncMs;
    this.#syncMs = 0;
    const diff = this.#compiler.commit();
    const ifindexOf = (pod: string): number | undefined => this.#attachments.ifindexOf(pod);
    const fullSync = !this.#fullSyncDone;
    const needed = this.#compiler.stateCounts().policyEntries;
    const capacity = this.#datapath.policyCapacity();
    // The full sync compares the datapath's maps with the whole state, as does a commit that may not fit; others read narrowly.
    const incremental = !fullSync && this.#mapFull === undefined && this.#policyEntriesWritten + diff.policyUpserts.length <= capacity;
    const committed = performance.now();
    const state = incremental ? undefined : this.#compiler.mapsState();
    const stateRead = performance.now();
    const fit = state !== undefined && needed > capacity ? fitPolicyMap(state, capacity) : undefined;
    this.#failedClosed = new Set(fit?.failedClosed);
    this.#publishHttpView();
    const compiled = performance.now();
    stage("compile", compiled - started);
    const cpuCompiled = threadCpuTime();
    cpuStage("compile", cpuStarted, cpuCompiled);
    let result: ApplyResult;
    try {
      result = state ? this.#datapath.replaceAll(fit?.state ?? state, ifindexOf) : this.#datapath.apply(diff, ifindexOf);
    } catch (error) {
      // The compiler moved on but the maps may hold any part of the diff: the
      // retry compares the maps with the whole desired state, so nothing is lost.
      this.#fullSyncDone = false;
      throw error;
    }
    this.#policyEntriesWritten = fit?.state.policy.size ?? needed;
    this.#setMapFull(fit, capacity);
    const endpoints = this.#compiler.stateCounts().endpoints;
    this.#attachments.committed(fullSync);
    const written = performance.now();
    stage("write", written - compiled);
    cpuStage("write", cpuCompiled, threadCpuTime());
    const seconds = (written - started) / 1000;
    // A new ipBlock CIDR gives the addresses inside it new identity keys, so a policy change can wait on identities too.
    const pending = this.#compiler.pendingIdentityKeys().length;
    if (pending > 0) this.#log.debug({ pending }, "Identities pending: waiting for the operator's PalisadeIdentity objects");
    this.#log.debug({ ...result, skippedEndpoints: result.skippedEndpoints.length, seconds }, "Applied policy");
    this.#report.committed({ endpoints, pendingIdentities: pending, caughtUp: options.drained ? this.#objects.position() : undefined, mapFull: this.#mapFull });
    if (fullSync) {
      this.#fullSyncDone = true;
      const ms = (from: number, to: number) => Math.round(to - from);
      const phasesMs = { sync: Math.round(syncMs), commit: ms(started, committed), state: ms(committed, stateRead), write: ms(compiled, written) };
      this.#log.info({ endpoints, policies: this.#report.applied.length, ...writeCounts(result), seconds, phasesMs }, "Full sync applied");
    }
  }

  /**
   * Writes the node report if it changed since the last write. Apart from
   * the commit, so that a report the API server refuses (logged once, not
   * retried until it changes) or cannot take now never makes the maps be
   * written again.
   *
   * @throws when the API server could not be reached or was not ready: retry later.
   */
  async writeReport(signal: AbortSignal): Promise<void> {
    const started = performance.now();
    try {
      await this.#report.write(signal);
    } finally {
      this.#stages.report.observe((performance.now() - started) / 1000);
    }
  }

  /** A pod's endpoint state as the maps hold it: failed closed while its entries do not fit. */
  #endpointOf(pod: string): EndpointState | undefined {
    const state = this.#compiler.endpointOf(pod);
    return state !== undefined && this.#failedClosed.has(pod) ? failClosed(state) : state;
  }

  /** Notes what did not fit `pal_policy`, logging each change of it once. */
  #setMapFull(fit: PolicyFit | undefined, capacity: number): void {
    const before = this.#mapFull;
    this.#mapFull = fit === undefined ? undefined : { map: MAP_NAMES.policy, needed: fit.needed, capacity, failedClosed: fit.failedClosed };
    if (JSON.stringify(before) === JSON.stringify(this.#mapFull)) return;
    if (this.#mapFull !== undefined) {
      const { map, needed, failedClosed } = this.#mapFull;
      this.#log.error(
        { map, needed, capacity, failedClosed },
        `Cannot program every endpoint: map ${map} needs ${needed} entries, its capacity is ${capacity}; ${failedClosed.length} endpoints fail closed (denied in every direction a policy isolates them in) until it fits: ${failedClosed.join(", ")}`,
      );
    } else if (before !== undefined) {
      this.#log.info({ map: before.map, capacity }, `Map ${before.map} fits the desired state again: every endpoint is programmed`);
    }
  }

  /** Publishes the HTTP view if it changed since the last one published; a failure is logged and retried at the next commit. */
  #publishHttpView(): void {
    if (!this.#publishHttpViewTo) return;
    const view = this.#compiler.httpView();
    const text = JSON.stringify(view);
    if (text === this.#publishedHttpView) return;
    try {
      this.#publishHttpViewTo(view);
      this.#publishedHttpView = text;
    } catch (error) {
      this.#log.error({ err: error }, "Cannot publish the HTTP view: the proxy judges requests by the previous one");
    }
  }

  #syncNamespace(name: string, obj: KubernetesObject | undefined): void {
    if (obj === undefined) {
      this.#compiler.deleteNamespace(name);
      return;
    }
    const converted = namespaceFromObject(obj);
    if (converted.ok) this.#compiler.upsertNamespace(converted.value);
    else this.#logInvalid(converted.errors);
  }

  #syncPolicy(kind: PolicyKind, key: string, obj: CachedPolicy | undefined): void {
    const { namespace, name } = parseObjectKey(key);
    if (obj === undefined) {
      this.#compiler.deletePolicy(kind, namespace, name);
      this.#report.forget(kind, namespace, name);
      this.#refused.delete(`${kind}/${key}`);
      return;
    }
    const { converted } = obj;
    if (!converted.ok) {
      const enforced = this.#report.fedPolicy(kind, namespace, name)?.generation;
      // Never accepted: its pods are isolated in its directions with none of its rules (fail closed), unreported.
      const isolation = enforced === undefined ? converted.isolation : undefined;
      if (isolation !== undefined) this.#compiler.upsertNormalizedPolicy(isolation);
      this.#refuse(kind, key, obj, converted.errors, enforced !== undefined ? `generation ${enforced} stays enforced` : isolation !== undefined ? "the pods it selects are isolated in its directions, with none of its rules, until it is corrected" : "no generation of it is enforced, and its selector cannot be read");
      return;
    }
    this.#refused.delete(`${kind}/${key}`);
    this.#compiler.upsertNormalizedPolicy(converted.policy);
    this.#report.fed({ kind, namespace, name, uid: obj.metadata?.uid ?? "", generation: obj.metadata?.generation ?? 0 });
  }

  async #syncPod(key: string, obj: CachedPod | undefined): Promise<void> {
    const converted = obj?.converted;
    if (converted !== undefined && !converted.ok) this.#logInvalid(converted.errors);
    if (obj === undefined || converted === undefined || !converted.ok) {
      const { namespace, name } = parseObjectKey(key);
      this.#compiler.deletePod(namespace, name);
      this.#setHostIps(key, []);
      this.#attachments.release(key);
      this.#reclaimed(this.#addressClaims.release(key).changed);
      return;
    }
    const claim = this.#addressClaims.claim(key, creationTime(obj), converted.value.pod.ips);
    for (const { ip, owner } of claim.taken) this.#log.warn({ pod: key, ip, owner }, `Pod "${key}" claims the address ${ip} of pod "${owner}", created before it; the address stays ${owner}'s`);
    this.#reclaimed(claim.changed);
    const pod = withIps(converted.value.pod, claim.owned);
    this.#setHostIps(key, converted.value.hostIPs);
    this.#compiler.upsertPod(pod);
    const [ip] = pod.ips;
    if (pod.nodeName !== this.#nodeName || ip === undefined) {
      this.#attachments.release(key);
      return;
    }
    const found = await this.#podInterface(ip);
    if (found === undefined) throw new PodInterfaceNotReadyError(`Cannot attach to pod "${key}": no interface routes to its IP ${JSON.stringify(ip)} yet`);
    this.#attachments.found(key, found);
  }

  /** Pods whose owned addresses changed: the compiler hears of it now (before the next commit), their interfaces when they are synced again. */
  #reclaimed(keys: readonly string[]): void {
    for (const key of keys) {
      const converted = (this.#objects.get("Pod", key) as CachedPod | undefined)?.converted;
      if (converted?.ok === true) this.#compiler.upsertPod(withIps(converted.value.pod, this.#addressClaims.owned(key)));
      this.#resync("Pod", key);
    }
  }

  #setHostIps(key: string, ips: string[]): void {
    const all = this.#hostIps.set(key, ips);
    if (all) this.#compiler.setHostIPs(all);
  }

  /** Logs the refusal of a policy's generation, once; the compiler and the report keep what they had. */
  #refuse(kind: PolicyKind, key: string, obj: KubernetesObject, errors: readonly PolicyError[], outcome: string): void {
    const refused = `${obj.metadata?.uid ?? ""}/${obj.metadata?.generation ?? 0}`;
    if (this.#refused.get(`${kind}/${key}`) === refused) return;
    this.#refused.set(`${kind}/${key}`, refused);
    const { namespace, name } = parseObjectKey(key);
    for (const e of errors) {
      this.#log.error({ kind, namespace, name, generation: obj.metadata?.generation, field: e.field, err: e }, `${e.message}; ${outcome}`);
    }
  }

  #logInvalid(errors: PolicyError[]): void {
    for (const e of errors) {
      this.#log.error({ kind: e.kind, namespace: e.namespace, name: e.objectName, field: e.field, err: e }, `${e.message}; skipped`);
    }
  }
}
