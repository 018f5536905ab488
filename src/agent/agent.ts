/**
 * The node agent: watches namespaces, pods and both policy kinds, compiles
 * policy for this node's pods, writes the difference to the pinned eBPF
 * maps in batches, attaches the programs to each local pod's host-side
 * interface, serves health and metrics, logs denied flows, collects expired
 * conntrack entries, and reports what it enforces.
 *
 * One worker drains a deduplicating queue of object keys; each key updates
 * the compiler's input, and a single `commit` key (queued behind them)
 * turns everything so far into one diff. The first commit after the
 * informers synced is a full `replaceAll` against what the kernel already
 * holds, so a restarted agent re-adopts its pinned state without dropping
 * traffic.
 *
 * Identity numbers come from the operator's PalisadeIdentity objects
 * (`identities: "cluster"`), so every node agrees; a key without an object
 * yet is pending (see {@linkcode PolicyCompiler.pendingIdentityKeys}) and the
 * report does not claim to have caught up while any is. An agent run without
 * an operator numbers them itself (`identities: "local"`).
 *
 * @module
 */
import { HostIpsByPod } from "../policy/host-ips.ts";
import type { KubernetesObject } from "@kubernetes/client-node";
import { Datapath } from "../datapath/datapath.ts";
import type { EventSubscription } from "../datapath/datapath.ts";
import type { AgentDatapath } from "./agent-datapath.ts";
import type { KubeClient } from "../k8s/client.ts";
import { parseObjectKey } from "../k8s/cache.ts";
import type { Logger } from "../k8s/logger.ts";
import { serveProbes } from "../k8s/probe-server.ts";
import type { ProbeServer } from "../k8s/probe-server.ts";
import { WorkQueue } from "../k8s/workqueue.ts";
import { PolicyCompiler } from "../policy/compiler.ts";
import type { PolicyKind } from "../policy/compiler.ts";
import type { IdentityAllocator } from "../policy/identity.ts";
import { LocalIdentityAllocator } from "../policy/identity.ts";
import { ClusterIdentityAllocator } from "./cluster-identities.ts";
import type { PolicyError } from "../policy/validate.ts";
import { namespaceFromObject, podFromObject, policyFromObject } from "../api-objects/index.ts";
import { ConntrackCollector } from "./conntrack-gc.ts";
import { logFlows } from "./flow-log.ts";
import { Histogram } from "../k8s/prometheus.ts";
import { APPLY_DURATION_BUCKETS, renderMetrics, snapshotMetrics } from "./metrics.ts";
import type { MetricsSnapshot } from "./metrics.ts";
import { podInterfaceByRoute } from "./pod-interface.ts";
import type { PodInterfaceLookup } from "./pod-interface.ts";
import { PodAttachments } from "./pod-attachments.ts";
import { writeNodeReport } from "../k8s/node-report.ts";
import { EnforcementReport } from "./enforcement-report.ts";
import { ClusterWatch } from "./cluster-watch.ts";
import type { WatchedKind } from "./cluster-watch.ts";

/** The pin root of a node's datapath unless told otherwise. */
export const DEFAULT_PIN_ROOT = "/sys/fs/bpf/palisade";

/** The health and metrics port unless told otherwise. */
export const DEFAULT_METRICS_PORT = 9962;

/** Options of {@linkcode Agent.start}. */
export interface AgentOptions {
  /** The Node this agent enforces for: only its pods become endpoints. */
  nodeName: string;
  /** The API server connection. */
  client: KubeClient;
  /** bpffs directory of the pinned maps and links; {@linkcode DEFAULT_PIN_ROOT} by default. */
  pinRoot?: string;
  /** The BPF object; the repository's build output by default. */
  objectPath?: string;
  /** Port of /healthz, /readyz and /metrics; {@linkcode DEFAULT_METRICS_PORT} by default, 0 for any free port. */
  metricsPort?: number;
  /** Address the health and metrics server listens on; all addresses by default. */
  metricsHost?: string;
  /** Where to log. */
  logger: Logger;
  /** Finds a pod's host-side interface from its IP; the route lookup by default. */
  podInterface?: PodInterfaceLookup;
  /** Where identity numbers come from: {@linkcode IdentitySource}; `"cluster"` by default. */
  identities?: IdentitySource;
}

/**
 * `"cluster"`: the operator's PalisadeIdentity objects, the same on every
 * node. `"local"`: numbered by this agent alone, for an agent run without an
 * operator (numbers then differ between nodes).
 */
export type IdentitySource = "local" | "cluster";

/** The queue key that asks for a commit of everything processed before it. */
const COMMIT = "commit";
/** The queue key that hands identity keys whose number changed to the compiler. */
const IDENTITIES = "identities";
/** A commit waits behind newly queued keys at most this long, so a steady stream of events cannot starve it. */
const MAX_COMMIT_DELAY_MS = 200;

/** A local pod's interface is not there yet; its key is retried with backoff. */
export class PodInterfaceNotReadyError extends Error {
  override name = "PodInterfaceNotReadyError";
}

/**
 * A running agent.
 *
 * @example
 * ```ts
 * const agent = await Agent.start({ nodeName: "node-1", client: KubeClient.fromFile(path), logger: jsonLogger() });
 * await agent.ready;
 * await agent.stop();
 * ```
 */
export class Agent {
  /** Resolves once the informers synced and the first full sync reached the kernel; rejects if the agent stops first. */
  readonly ready: Promise<void>;
  readonly #options: AgentOptions;
  readonly #log: Logger;
  /** The kernel datapath, for {@linkcode datapath}. */
  readonly #kernel: Datapath;
  /** The same, as everything below the orchestration uses it. */
  readonly #datapath: AgentDatapath;
  readonly #compiler: PolicyCompiler;
  readonly #queue: WorkQueue<string>;
  readonly #watch: ClusterWatch;
  readonly #identities: ClusterIdentityAllocator | undefined;
  /** Identity keys whose number may have changed since the compiler last heard. */
  readonly #changedIdentities = new Set<string>();
  readonly #abort = new AbortController();
  readonly #podInterface: PodInterfaceLookup;
  readonly #applyDuration = new Histogram(APPLY_DURATION_BUCKETS);
  readonly #attachments: PodAttachments;
  /** Host addresses learned from host-network pods, by pod key. */
  readonly #hostIps = new HostIpsByPod();
  readonly #report: EnforcementReport;
  #fullSyncDone = false;
  #commitQueuedAt = 0;
  #markReady: () => void = () => {};
  #failReady: (e: Error) => void = () => {};
  #workers: Promise<void> | undefined;
  #server: ProbeServer | undefined;
  #flowEvents: EventSubscription | undefined;
  readonly #conntrack: ConntrackCollector;
  #isReady = false;

  private constructor(options: AgentOptions, datapath: Datapath) {
    this.#options = options;
    this.#log = options.logger;
    this.#kernel = datapath;
    this.#datapath = datapath;
    this.#watch = new ClusterWatch({ client: options.client, logger: options.logger, identities: (options.identities ?? "cluster") === "cluster" });
    let identities: IdentityAllocator;
    if (this.#watch.identityTable !== undefined) {
      this.#identities = new ClusterIdentityAllocator(this.#watch.identityTable, (keys) => this.#noteIdentities(keys));
      identities = this.#identities;
    } else {
      identities = new LocalIdentityAllocator();
    }
    this.#compiler = new PolicyCompiler({ nodeName: options.nodeName, identities });
    this.#queue = new WorkQueue<string>({ name: "agent", baseDelayMs: 50, maxDelayMs: 10_000, logger: options.logger });
    this.#podInterface = options.podInterface ?? podInterfaceByRoute;
    this.#conntrack = new ConntrackCollector(datapath, options.logger);
    this.#report = new EnforcementReport(options.nodeName, (report, signal) => writeNodeReport(options.client, report, signal));
    this.#attachments = new PodAttachments(datapath, (pod) => this.#compiler.endpointOf(pod), options.logger);
    this.ready = new Promise((resolve, reject) => {
      this.#markReady = resolve;
      this.#failReady = reject;
    });
    // Callers that only use stop() must not see an unhandled rejection.
    this.ready.catch(() => {});
  }

  /**
   * Opens (or re-adopts) the datapath, starts the health and metrics server,
   * the informers, the flow log and conntrack GC, and begins enforcing once
   * the informers synced. Resolves when everything is started, not when
   * ready: await {@linkcode ready} for that.
   */
  static async start(options: AgentOptions): Promise<Agent> {
    const datapath = Datapath.open({ pinRoot: options.pinRoot ?? DEFAULT_PIN_ROOT, ...(options.objectPath === undefined ? {} : { objectPath: options.objectPath }) });
    const agent = new Agent(options, datapath);
    try {
      await agent.#start();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  }

  /** The port the health and metrics server listens on. */
  get metricsPort(): number {
    return this.#server?.port ?? 0;
  }

  /** The datapath this agent writes to. */
  get datapath(): Datapath {
    return this.#kernel;
  }

  async #start(): Promise<void> {
    this.#server = await serveProbes(this.#options.metricsPort ?? DEFAULT_METRICS_PORT, this.#options.metricsHost, {
      ready: () => this.#isReady,
      notReadyMessage: "not ready: waiting for the first sync",
      metrics: () => renderMetrics(this.metricsSnapshot()),
      log: this.#log,
    });

    this.#flowEvents = logFlows(this.#datapath, this.#log, {
      podOf: (id) => this.#compiler.podOfEndpoint(id),
      ruleOf: (id) => this.#compiler.rule(id),
    });
    this.#conntrack.start();

    this.#watch.start({
      objectChanged: (kind, key) => this.#queue.add(`${kind}/${key}`),
      identityObjectsChanged: (keys) => this.#noteIdentities(keys),
    });
    this.#log.info({ node: this.#options.nodeName, pinRoot: this.#kernel.pinRoot, metricsPort: this.metricsPort }, "Agent started");
    void this.#runAfterSync();
  }

  async #runAfterSync(): Promise<void> {
    if (!(await this.#watch.waitForSync(this.#abort.signal))) {
      this.#failReady(new Error(`Cannot make agent of node "${this.#options.nodeName}" ready: it stopped before the informers synced`));
      return;
    }
    this.#log.info({}, "Informers synced, starting the full sync");
    // Every initial object is queued by now, so the commit lands behind all of them.
    this.#requestCommit();
    this.#workers = this.#queue.runWorkers(1, (key) => this.#process(key));
  }

  /** Stops watching and serving; pinned maps and attachments stay, so enforcement continues. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#failReady(new Error(`Cannot make agent of node "${this.#options.nodeName}" ready: it was stopped`));
    this.#conntrack.stop();
    await this.#watch.stop();
    this.#queue.shutdown();
    await this.#workers;
    this.#flowEvents?.close();
    await this.#server?.close();
    this.#datapath.close();
    this.#log.info({ node: this.#options.nodeName }, "Agent stopped");
  }

  /** Keys whose table entry changed (or whose number this agent released): the compiler hears of them before the next commit. */
  #noteIdentities(keys: string[]): void {
    let queued = false;
    for (const key of keys) {
      if (this.#identities?.changed(key) === false) continue;
      this.#changedIdentities.add(key);
      queued = true;
    }
    if (queued) this.#queue.add(IDENTITIES);
  }

  /** The numbers /metrics serves. */
  metricsSnapshot(): MetricsSnapshot {
    return snapshotMetrics({ compiled: this.#compiler, datapath: this.#datapath, applyDuration: this.#applyDuration, k8sEvents: this.#watch.events });
  }

  #requestCommit(): void {
    if (this.#commitQueuedAt === 0) this.#commitQueuedAt = Date.now();
    this.#queue.add(COMMIT);
  }

  async #process(key: string): Promise<void> {
    if (key === COMMIT) {
      await this.#commit();
      return;
    }
    if (key === IDENTITIES) {
      this.#compiler.identitiesChanged(this.#changedIdentities);
      this.#changedIdentities.clear();
      this.#requestCommit();
      return;
    }
    const slash = key.indexOf("/");
    const kind = key.slice(0, slash) as WatchedKind;
    const objKey = key.slice(slash + 1);
    const obj = this.#watch.get(kind, objKey);
    switch (kind) {
      case "Namespace":
        this.#syncNamespace(objKey, obj);
        break;
      case "Pod":
        await this.#syncPod(objKey, obj);
        break;
      default:
        this.#syncPolicy(kind, objKey, obj);
    }
  }

  #syncNamespace(name: string, obj: KubernetesObject | undefined): void {
    this.#requestCommit();
    if (obj === undefined) {
      this.#compiler.deleteNamespace(name);
      return;
    }
    const converted = namespaceFromObject(obj);
    if (converted.ok) this.#compiler.upsertNamespace(converted.value);
    else this.#logInvalid(converted.errors);
  }

  #syncPolicy(kind: PolicyKind, key: string, obj: KubernetesObject | undefined): void {
    const { namespace, name } = parseObjectKey(key);
    if (obj === undefined) {
      this.#compiler.deletePolicy(kind, namespace, name);
      this.#report.forget(kind, namespace, name);
      this.#requestCommit();
      return;
    }
    const converted = policyFromObject(obj);
    if (!converted.ok) {
      // The last valid generation (if any) stays enforced: a bad edit must not open what the policy closed.
      this.#logInvalid(converted.errors);
      return;
    }
    try {
      this.#compiler.upsertPolicy(converted.value);
    } catch (e) {
      this.#log.error({ kind, namespace, name, err: e }, `Cannot enforce ${kind} "${key}": the compiler refused it`);
      return;
    }
    this.#report.fed({ kind, namespace, name, uid: converted.value.metadata.uid ?? "", generation: converted.value.metadata.generation ?? 0 });
    this.#requestCommit();
  }

  async #syncPod(key: string, obj: KubernetesObject | undefined): Promise<void> {
    this.#requestCommit();
    const converted = obj === undefined ? undefined : podFromObject(obj);
    if (converted !== undefined && !converted.ok) this.#logInvalid(converted.errors);
    if (converted === undefined || !converted.ok) {
      const { namespace, name } = parseObjectKey(key);
      this.#compiler.deletePod(namespace, name);
      this.#setHostIps(key, []);
      this.#attachments.release(key);
      return;
    }
    const { pod, hostIPs } = converted.value;
    this.#setHostIps(key, hostIPs);
    try {
      this.#compiler.upsertPod(pod);
    } catch (e) {
      this.#log.error({ pod: key, err: e }, `Cannot enforce for pod "${key}": the compiler refused it`);
      return;
    }
    const [ip] = pod.ips;
    if (pod.nodeName !== this.#options.nodeName || ip === undefined) {
      this.#attachments.release(key);
      return;
    }
    const found = await this.#podInterface(ip);
    if (found === undefined) throw new PodInterfaceNotReadyError(`Cannot attach to pod "${key}": no interface routes to its IP ${JSON.stringify(ip)} yet`);
    this.#attachments.found(key, found);
  }

  #setHostIps(key: string, ips: string[]): void {
    const all = this.#hostIps.set(key, ips);
    if (all) this.#compiler.setHostIPs(all);
  }

  async #commit(): Promise<void> {
    if (this.#queue.length > 0 && Date.now() - this.#commitQueuedAt < MAX_COMMIT_DELAY_MS) {
      // More changes are queued behind this commit: fold them into it.
      this.#queue.add(COMMIT);
      return;
    }
    const queueEmpty = this.#queue.length === 0;
    this.#commitQueuedAt = 0;
    const ifindexOf = (pod: string): number | undefined => this.#attachments.ifindexOf(pod);
    const started = process.hrtime.bigint();
    const diff = this.#compiler.commit();
    // The full sync (once per agent start) compares the kernel maps with the whole state; later commits read narrowly.
    const result = this.#fullSyncDone ? this.#datapath.apply(diff, ifindexOf) : this.#datapath.replaceAll(this.#compiler.state(), ifindexOf);
    const endpoints = this.#compiler.stateCounts().endpoints;
    this.#attachments.committed(!this.#fullSyncDone);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.#applyDuration.observe(seconds);
    // A new ipBlock CIDR gives the addresses inside it new identity keys, so a policy change can wait on identities too.
    const pending = this.#compiler.pendingIdentityKeys().length;
    if (pending > 0) this.#log.debug({ pending }, "Identities pending: waiting for the operator's PalisadeIdentity objects");
    this.#log.debug({ ...result, skippedEndpoints: result.skippedEndpoints.length, seconds }, "Applied policy");
    this.#report.committed({ endpoints, pendingIdentities: pending, caughtUp: queueEmpty ? this.#watch.position() : undefined });
    if (!this.#fullSyncDone) {
      this.#fullSyncDone = true;
      this.#log.info({ endpoints, policies: this.#report.applied.length, ...countsOf(result), seconds }, "Full sync applied");
    }
    // A failure throws, so the commit key is retried with backoff and the report rewritten then.
    await this.#report.write(this.#abort.signal);
    if (!this.#isReady) {
      this.#isReady = true;
      this.#markReady();
    }
  }

  #logInvalid(errors: PolicyError[]): void {
    for (const e of errors) {
      this.#log.error({ kind: e.kind, namespace: e.namespace, name: e.objectName, field: e.field, err: e }, `${e.message}; skipped`);
    }
  }
}

function countsOf(result: { policyUpserts: number; endpointUpserts: number; ipcacheUpserts: number; policyRemovals: number; endpointRemovals: number; ipcacheRemovals: number }): Record<string, number> {
  const { policyUpserts, endpointUpserts, ipcacheUpserts, policyRemovals, endpointRemovals, ipcacheRemovals } = result;
  return { policyUpserts, endpointUpserts, ipcacheUpserts, policyRemovals, endpointRemovals, ipcacheRemovals };
}
