/**
 * The operator: one active replica per cluster, chosen by a Lease. Every
 * replica keeps warm caches of the policies, pods, Nodes and the agents'
 * report ConfigMaps, so a standby that takes over starts at once; only the
 * leader runs the work queue that writes EBPFNetworkPolicy status and Events.
 *
 * @module
 */
import type { KubernetesObject, V1ConfigMap, V1Namespace, V1Node, V1Pod } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { isDeepStrictEqual } from "node:util";
import {
  EventRecorder,
  Informer,
  KubeClient,
  LeaderElector,
  NAMESPACE_INDEX,
  namespaceIndex,
  Resources,
  WorkQueue,
  findCondition,
  isNotFound,
  jsonLogger,
  objectKey,
  onAny,
  parseNodeReport,
  patchStatus,
  reportedNodeName,
  setConditions,
} from "../k8s/index.ts";
import type { Condition, ConditionInput, Logger, NodeReport } from "../k8s/index.ts";
import { identityInformer, namespaceFields, podFields, policyFields } from "../api-objects/index.ts";
import type { EBPFNetworkPolicy, EBPFNetworkPolicyStatus, NetworkPolicy, PalisadeIdentity } from "../policy/api-types.ts";
import { validatePolicy } from "../policy/validate.ts";
import { serveProbes } from "../k8s/probe-server.ts";
import type { ProbeServer } from "../k8s/probe-server.ts";
import { DEFAULT_IDENTITY_GRACE_MS, IdentityController } from "./identities.ts";
import { OperatorMetrics } from "./metrics.ts";
import { ConditionReason, ConditionType, computePolicyStatus, describeIssues } from "./policy-status.ts";
import { TlsMaterialController } from "./tls-material.ts";

/** Port of `/healthz`, `/readyz` and `/metrics` unless told otherwise (deploy/20-operator.yaml's `http-metrics`). */
export const DEFAULT_OPERATOR_METRICS_PORT = 9963;

/** `reportingController` of the operator's Events. */
export const OPERATOR_CONTROLLER_NAME = "palisade.dev/operator";

/** Options of {@linkcode runOperator}. */
export interface OperatorOptions {
  /** Kubeconfig file; `$KUBECONFIG`, `~/.kube/config` or the in-cluster service account when absent. */
  kubeconfig?: string;
  /** Namespace of the Lease and of the agents' report ConfigMaps; `palisade-system` by default. */
  namespace?: string;
  /** Name of the leader-election Lease; `palisade-operator` by default. */
  leaseName?: string;
  /** This replica's identity in the election; `$POD_NAME` (or the host name) plus a random suffix by default. */
  identity?: string;
  /** Port of the probe and metrics server; 9963 by default, 0 for a free one. */
  metricsPort?: number;
  /** Address the probe and metrics server binds; all interfaces by default. */
  metricsHost?: string;
  /** Lease timings (client-go's defaults of 15 s, 10 s and 2 s when absent); tests shorten them. */
  leaderElection?: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  /** Parallel reconciles; 2 by default. */
  workers?: number;
  /** Where to log; JSON lines on stderr by default. */
  logger?: Logger;
  /** How long an identity's key must go unused before its PalisadeIdentity is deleted; 30 s by default. */
  identityGraceMs?: number;
}

/** A running operator replica. */
export interface RunningOperator {
  /** Its identity in the election. */
  readonly identity: string;
  /** The port `/healthz`, `/readyz` and `/metrics` are served on. */
  readonly port: number;
  /** Its metrics, as `/metrics` serves them. */
  readonly metrics: OperatorMetrics;
  /** Whether it holds the lease now. */
  isLeader(): boolean;
  /** Whether every cache has synced (what `/readyz` says). */
  ready(): boolean;
  /** Stops: leadership ends and the lease is released, watches stop, the server closes. */
  stop(): Promise<void>;
}

/** Work-queue key of a policy: its kind, then its cache key. */
type PolicyKey = `EBPFNetworkPolicy/${string}` | `NetworkPolicy/${string}`;

type StatusPolicy = EBPFNetworkPolicy & { status?: EBPFNetworkPolicyStatus };

/**
 * Starts an operator replica: caches fill at once, the replica competes for
 * the Lease, and while it leads it reconciles every policy whenever the
 * policy, the pods of its namespace, the Nodes or the agents' reports change.
 *
 * For each EBPFNetworkPolicy it writes `status.conditions` (Accepted from the
 * checks the CRD schema cannot make, with a Warning Event when refused;
 * Programmed once every Node's agent reports the current generation),
 * `selectedPods`, `programmedNodes`/`totalNodes`/`programmed` and
 * `observedGeneration`. NetworkPolicies get Warning Events only (their
 * status is not ours). The leader also allocates the cluster's security
 * identities (PalisadeIdentity objects, see {@linkcode IdentityController}),
 * with Warning Events on the pods it cannot read or number cluster-wide.
 *
 * @example
 * ```ts
 * const operator = await runOperator({ kubeconfig: "/var/lib/palisade/dev/admin.kubeconfig", metricsPort: 0 });
 * process.once("SIGTERM", () => void operator.stop());
 * ```
 */
export async function runOperator(options: OperatorOptions = {}): Promise<RunningOperator> {
  const operator = new Operator(options);
  await operator.start();
  return operator;
}

class Operator implements RunningOperator {
  readonly identity: string;
  readonly metrics = new OperatorMetrics();
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #log: Logger;
  readonly #workers: number;
  readonly #policies: Informer<StatusPolicy>;
  readonly #networkPolicies: Informer<NetworkPolicy>;
  readonly #pods: Informer<V1Pod>;
  readonly #nodes: Informer<V1Node>;
  readonly #reports: Informer<V1ConfigMap>;
  /** Each cached report ConfigMap parsed once (a change replaces the cached object): every policy's status reads all of them. */
  readonly #parsedReports = new WeakMap<V1ConfigMap, NodeReport | Error>();
  readonly #namespaces: Informer<V1Namespace>;
  readonly #identities: Informer<PalisadeIdentity>;
  readonly #identityController: IdentityController;
  readonly #tlsMaterial: TlsMaterialController;
  readonly #events: EventRecorder;
  readonly #elector: LeaderElector;
  readonly #metricsPort: number;
  readonly #metricsHost: string;
  /** NetworkPolicy problems already reported, by uid: `generation:message`. */
  readonly #reportedNetworkPolicyIssues = new Map<string, string>();
  #queue: WorkQueue<PolicyKey> | undefined;
  #term: Promise<void> = Promise.resolve();
  #server: ProbeServer | undefined;

  constructor(options: OperatorOptions) {
    this.#client = options.kubeconfig === undefined ? KubeClient.fromDefault() : KubeClient.fromFile(options.kubeconfig);
    this.#namespace = options.namespace ?? "palisade-system";
    this.identity = options.identity ?? `${process.env["POD_NAME"] || hostname()}-${randomBytes(4).toString("hex")}`;
    this.#log = options.logger ?? jsonLogger("info", { component: "operator", identity: this.identity });
    this.#workers = options.workers ?? 2;
    this.#metricsPort = options.metricsPort ?? DEFAULT_OPERATOR_METRICS_PORT;
    this.#metricsHost = options.metricsHost ?? "0.0.0.0";
    const client = this.#client;
    const logger = this.#log;
    // An EBPFNetworkPolicy's status is ours: the conditions written last are compared with the next ones.
    this.#policies = new Informer<StatusPolicy>({ client, logger, resource: Resources.ebpfNetworkPolicies, indexers: { [NAMESPACE_INDEX]: namespaceIndex }, transform: (policy) => ({ ...policyFields(policy), ...(policy.status === undefined ? {} : { status: policy.status }) }) });
    this.#networkPolicies = new Informer<NetworkPolicy>({ client, logger, resource: Resources.networkPolicies, transform: policyFields });
    // Only the fields policy reads are cached (see api-objects' cached fields); the rest would only cost memory.
    this.#pods = new Informer<V1Pod>({ client, logger, resource: Resources.pods, indexers: { [NAMESPACE_INDEX]: namespaceIndex }, transform: podFields });
    this.#namespaces = new Informer<V1Namespace>({ client, logger, resource: Resources.namespaces, transform: namespaceFields });
    this.#identities = identityInformer(client, logger);
    this.#nodes = new Informer<V1Node>({
      client, logger, resource: Resources.nodes,
      transform: (node) => ({ apiVersion: node.apiVersion, kind: node.kind, metadata: node.metadata }) as V1Node,
    });
    this.#reports = new Informer<V1ConfigMap>({ client, logger, resource: Resources.configMaps, namespace: this.#namespace });
    this.#events = new EventRecorder({ client, logger, controller: OPERATOR_CONTROLLER_NAME, instance: this.identity });
    this.#identityController = new IdentityController({
      client, logger,
      metrics: this.metrics,
      namespaces: this.#namespaces as Informer<KubernetesObject>,
      pods: this.#pods,
      networkPolicies: this.#networkPolicies as unknown as Informer<KubernetesObject>,
      policies: this.#policies as unknown as Informer<KubernetesObject>,
      identities: this.#identities,
      events: this.#events,
      graceMs: options.identityGraceMs ?? DEFAULT_IDENTITY_GRACE_MS,
    });
    this.#tlsMaterial = new TlsMaterialController({
      client, logger,
      policies: this.#policies,
      onReferencesChanged: (keys) => keys.forEach((key) => this.#enqueue(`EBPFNetworkPolicy/${key}`)),
    });
    this.#elector = new LeaderElector({
      client, logger,
      namespace: this.#namespace,
      name: options.leaseName ?? "palisade-operator",
      identity: this.identity,
      ...options.leaderElection,
      onStartedLeading: (signal) => {
        this.#term = this.#lead(signal);
        return this.#term;
      },
      onStoppedLeading: () => this.metrics.setLeader(false),
    });
  }

  get port(): number {
    return this.#server?.port ?? 0;
  }

  isLeader(): boolean {
    return this.#elector.isLeader();
  }

  ready(): boolean {
    return this.#informers().every((informer) => informer.hasSynced());
  }

  async start(): Promise<void> {
    this.#server = await serveProbes(this.#metricsPort, this.#metricsHost, {
      ready: () => this.ready(),
      notReadyMessage: "caches not synced",
      metrics: () => this.metrics.render(),
      log: this.#log,
    });
    this.#wireHandlers();
    for (const informer of this.#informers()) informer.start();
    this.#elector.start();
    this.#log.info({ port: this.#server.port, namespace: this.#namespace }, "Operator started");
  }

  async stop(): Promise<void> {
    await this.#elector.stop();
    await this.#term;
    await Promise.all(this.#informers().map((informer) => informer.stop()));
    await this.#server?.close();
    this.#log.info({}, "Operator stopped");
  }

  #informers(): Informer<KubernetesObject>[] {
    return [
      this.#policies, this.#networkPolicies, this.#pods, this.#nodes, this.#reports, this.#namespaces, this.#identities, ...this.#tlsMaterial.informers(),
    ] as Informer<KubernetesObject>[];
  }

  /** One leadership term: wait for the caches, reconcile everything, then whatever changes, until `signal`. */
  async #lead(signal: AbortSignal): Promise<void> {
    this.metrics.setLeader(true);
    const synced = await Promise.all(this.#informers().map((informer) => informer.waitForSync(signal)));
    if (!synced.every(Boolean)) return;
    const queue = new WorkQueue<PolicyKey>({ name: "policies", logger: this.#log });
    this.#queue = queue;
    signal.addEventListener("abort", () => queue.shutdown(), { once: true });
    this.#enqueueAllPolicies();
    for (const key of this.#networkPolicies.cache.keys()) queue.add(`NetworkPolicy/${key}`);
    await Promise.all([queue.runWorkers(this.#workers, (key) => this.#reconcile(key, signal)), this.#identityController.run(signal), this.#tlsMaterial.run(signal)]);
    if (this.#queue === queue) this.#queue = undefined;
  }

  #wireHandlers(): void {
    this.#policies.addHandlers(onAny((policy) => this.#enqueue(`EBPFNetworkPolicy/${objectKey(policy)}`)));
    this.#networkPolicies.addHandlers({
      onAdd: (policy) => this.#enqueue(`NetworkPolicy/${objectKey(policy)}`),
      onUpdate: (old, policy) => {
        if (old.metadata.generation !== policy.metadata.generation) this.#enqueue(`NetworkPolicy/${objectKey(policy)}`);
      },
      onDelete: (policy) => this.#reportedNetworkPolicyIssues.delete(policy.metadata.uid ?? ""),
    });
    this.#pods.addHandlers({
      onAdd: (pod) => this.#enqueueNamespace(pod.metadata?.namespace),
      onUpdate: (old, pod) => {
        if (old.status?.phase !== pod.status?.phase || !isDeepStrictEqual(old.metadata?.labels ?? {}, pod.metadata?.labels ?? {})) {
          this.#enqueueNamespace(pod.metadata?.namespace);
        }
      },
      onDelete: (pod) => this.#enqueueNamespace(pod.metadata?.namespace),
    });
    // Node updates are mostly heartbeats; only the set of Nodes counts.
    this.#nodes.addHandlers({ onAdd: () => this.#enqueueAllPolicies(), onDelete: () => this.#enqueueAllPolicies() });
    this.#reports.addHandlers(onAny((configMap) => {
      if (reportedNodeName(configMap.metadata?.name ?? "") !== undefined) this.#enqueueAllPolicies();
    }));
  }

  #enqueue(key: PolicyKey): void {
    this.#queue?.add(key);
  }

  #enqueueNamespace(namespace: string | undefined): void {
    if (namespace === undefined) return;
    for (const policy of this.#policies.cache.byIndex(NAMESPACE_INDEX, namespace)) this.#enqueue(`EBPFNetworkPolicy/${objectKey(policy)}`);
  }

  #enqueueAllPolicies(): void {
    for (const key of this.#policies.cache.keys()) this.#enqueue(`EBPFNetworkPolicy/${key}`);
  }

  async #reconcile(key: PolicyKey, signal: AbortSignal): Promise<void> {
    // Keys still queued when leadership ends are drained without acting on them.
    if (signal.aborted) return;
    const slash = key.indexOf("/");
    const cacheKey = key.slice(slash + 1);
    try {
      if (key.startsWith("EBPFNetworkPolicy/")) await this.#reconcileEbpfPolicy(cacheKey, signal);
      else await this.#reconcileNetworkPolicy(cacheKey);
      this.metrics.countReconcile("success");
    } catch (e) {
      if (signal.aborted) return;
      this.metrics.countReconcile("error");
      throw e;
    }
  }

  async #reconcileEbpfPolicy(cacheKey: string, signal: AbortSignal): Promise<void> {
    const policy = this.#policies.cache.get(cacheKey);
    if (!policy) return;
    const namespace = policy.metadata.namespace ?? "";
    const name = policy.metadata.name;
    const decision = computePolicyStatus({
      policy,
      pods: this.#pods.cache.byIndex(NAMESPACE_INDEX, namespace),
      nodes: this.#nodes.cache.keys(),
      reports: this.#nodeReports(),
      referenceIssues: this.#tlsMaterial.issuesOf(policy),
    });
    const generation = decision.observedGeneration;
    const accepted = decision.conditions.find((c) => c.type === ConditionType.accepted);
    const previous = findCondition(policy.status?.conditions as Condition[] | undefined, ConditionType.accepted);
    if (accepted?.status === "False" && !(previous?.status === "False" && previous.message === accepted.message && previous.observedGeneration === generation)) {
      this.#log.warn({ namespace, name, generation, issues: decision.issues }, "Policy refused");
      await this.#events.record(policy, "Warning", accepted.reason, "Validate", `Cannot accept EBPFNetworkPolicy "${namespace}/${name}": ${accepted.message}`);
    }
    if (this.#statusIsCurrent(policy, decision.conditions, decision.fields, generation)) return;
    try {
      await patchStatus(this.#client, Resources.ebpfNetworkPolicies, namespace, name, {
        observedGeneration: generation,
        conditions: decision.conditions,
        fields: decision.fields,
      }, { signal });
    } catch (e) {
      // Deleted since the cache saw it: its delete event needs no work.
      if (!isNotFound(e)) throw e;
    }
  }

  /** Whether the cached status already says what the decision says, so a write (and the read before it) can be skipped. */
  #statusIsCurrent(policy: StatusPolicy, conditions: readonly ConditionInput[], fields: Record<string, unknown>, generation: number): boolean {
    const status = (policy.status ?? {}) as Record<string, unknown> & { conditions?: Condition[] };
    const merged = setConditions(status.conditions, conditions, generation, new Date());
    return isDeepStrictEqual(merged, status.conditions ?? []) && Object.entries(fields).every(([field, value]) => isDeepStrictEqual(status[field], value));
  }

  async #reconcileNetworkPolicy(cacheKey: string): Promise<void> {
    const policy = this.#networkPolicies.cache.get(cacheKey);
    if (!policy) return;
    const uid = policy.metadata.uid ?? cacheKey;
    const issues = validatePolicy(policy);
    if (issues.length === 0) {
      this.#reportedNetworkPolicyIssues.delete(uid);
      return;
    }
    const message = describeIssues(issues);
    const signature = `${policy.metadata.generation ?? 0}:${message}`;
    if (this.#reportedNetworkPolicyIssues.get(uid) === signature) return;
    const ref = `${policy.metadata.namespace ?? ""}/${policy.metadata.name}`;
    this.#log.warn({ namespace: policy.metadata.namespace, name: policy.metadata.name, issues }, "NetworkPolicy cannot be enforced as written");
    await this.#events.record(policy, "Warning", ConditionReason.invalid, "Validate", `Cannot accept NetworkPolicy "${ref}": ${message}`);
    this.#reportedNetworkPolicyIssues.set(uid, signature);
  }

  /** The agents' reports by node name; an unreadable report maps to its error. */
  #nodeReports(): Map<string, NodeReport | Error> {
    const reports = new Map<string, NodeReport | Error>();
    for (const configMap of this.#reports.cache.list()) {
      const node = reportedNodeName(configMap.metadata?.name ?? "");
      if (node === undefined) continue;
      let report = this.#parsedReports.get(configMap);
      if (report === undefined) {
        try {
          report = parseNodeReport(configMap);
        } catch (e) {
          report = e as Error;
        }
        this.#parsedReports.set(configMap, report);
      }
      reports.set(node, report);
    }
    return reports;
  }
}
