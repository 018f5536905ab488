/**
 * The node agent, as one process runs it: it opens (or re-adopts) the pinned
 * datapath and wires the parts together, each in its own file:
 *
 * - the watch of the cluster ({@linkcode ClusterWatch}): namespaces, pods,
 *   both policy kinds and, with cluster identities, the PalisadeIdentity
 *   table;
 * - the reconcile loop ({@linkcode ReconcileLoop}, running the steps of a
 *   {@linkcode Reconciler}): objects into the compiler, commits to the
 *   datapath, pod interfaces attached and detached, the node report;
 * - the health and metrics server ({@linkcode snapshotMetrics}), the flow log
 *   ({@linkcode logFlows}) and conntrack collection
 *   ({@linkcode ConntrackCollector}).
 *
 * Stopping it stops all of them; the pinned maps and attachments stay, so
 * enforcement continues until the next agent re-adopts them.
 *
 * @module
 */
import { setFlagsFromString } from "node:v8";
import { writeFileAtomically } from "../atomic-file.ts";
import { collectGarbage } from "../k8s/collect-garbage.ts";
import { Datapath } from "../datapath/datapath.ts";
import { releaseFreeMemory } from "../datapath/native.ts";
import { DEFAULT_PIN_ROOT } from "../datapath/pin-root.ts";
import { installProxyRouting, PROXY_DEVICE } from "../datapath/proxy-routing.ts";
import type { EventSubscription } from "../datapath/datapath.ts";
import type { KubeClient } from "../k8s/client.ts";
import type { Logger } from "../k8s/logger.ts";
import { writeNodeReport } from "../k8s/node-report.ts";
import { serveProbes } from "../k8s/probe-server.ts";
import type { ProbeServer } from "../k8s/probe-server.ts";
import { DEFAULT_HTTP_VIEW_PATH } from "../policy/http-view.ts";
import { ClusterWatch } from "./cluster-watch.ts";
import { ConntrackCollector } from "./conntrack-gc.ts";
import { logFlows } from "./flow-log.ts";
import { renderMetrics, snapshotMetrics } from "./metrics.ts";
import type { MetricsSnapshot } from "./metrics.ts";
import { podInterfaceByRoute } from "./pod-interface.ts";
import type { PodInterfaceLookup } from "./pod-interface.ts";
import { ReconcileLoop } from "./reconcile-loop.ts";

export { DEFAULT_PIN_ROOT };

/** The health and metrics port unless told otherwise. */
export const DEFAULT_METRICS_PORT = 9962;
/** How much V8's heap may grow past what the last full collection kept before the next one, once the full sync is in (percent). */
const HEAP_GROWING_PERCENT = 50;

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
  /** Where the HTTP view for the node's proxy is published; {@linkcode DEFAULT_HTTP_VIEW_PATH} by default. */
  httpViewFile?: string;
  /**
   * `pal_policy`'s max_entries, when the agent creates the map (a pinned map keeps the size it was
   * created with: see docs/agent.md); the object's default (1,048,576) otherwise.
   */
  policyMapEntries?: number;
  /**
   * The port of the node's proxy (`palisade proxy`): the agent sets up the routing that delivers
   * steered flows to it and tells the datapath. Absent: no proxy, and flows HTTP rules cover fail closed.
   */
  proxyPort?: number;
}

/**
 * `"cluster"`: the operator's PalisadeIdentity objects, the same on every
 * node. `"local"`: numbered by this agent alone, for an agent run without an
 * operator (numbers then differ between nodes).
 */
export type IdentitySource = "local" | "cluster";

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
  readonly #datapath: Datapath;
  readonly #watch: ClusterWatch;
  readonly #loop: ReconcileLoop;
  readonly #conntrack: ConntrackCollector;
  readonly #abort = new AbortController();
  #failReady: (e: Error) => void = () => {};
  #isReady = false;
  #server: ProbeServer | undefined;
  #flowEvents: EventSubscription | undefined;

  private constructor(options: AgentOptions, datapath: Datapath) {
    this.#options = options;
    this.#log = options.logger;
    this.#datapath = datapath;
    this.#watch = new ClusterWatch({ client: options.client, logger: options.logger, identities: (options.identities ?? "cluster") === "cluster" });
    this.#loop = new ReconcileLoop({
      nodeName: options.nodeName,
      objects: this.#watch,
      identityTable: this.#watch.identityTable,
      datapath,
      podInterface: options.podInterface ?? podInterfaceByRoute,
      writeReport: (report, signal) => writeNodeReport(options.client, report, signal),
      logger: options.logger,
      publishHttpView: (view) => writeFileAtomically(options.httpViewFile ?? DEFAULT_HTTP_VIEW_PATH, JSON.stringify(view)),
    });
    this.#conntrack = new ConntrackCollector(datapath, options.logger);
    this.ready = new Promise((resolve, reject) => {
      this.#failReady = reject;
      void this.#loop.ready.then(() => {
        this.#isReady = true;
        resolve();
        // The full sync allocated several times what the agent keeps (see collect-garbage.ts), natively too:
        // the map reads' and the lists' buffers, which glibc would keep resident.
        collectGarbage(this.#log, "the full sync's garbage", releaseFreeMemory);
        // V8's idle collections then set the next full collection at a tenth over what the agent keeps, so the
        // first changes after a quiet spell started one: about 115 ms of marking on V8's helper threads at full
        // size, competing with the commit for the node's cores. Half as much again from here on; not during the
        // full sync, whose growth V8's own limits serve (docs/benchmarks.md, scale, Reading, 2026-12-07 late evening).
        setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
      });
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
    const datapath = Datapath.open({
      pinRoot: options.pinRoot ?? DEFAULT_PIN_ROOT,
      ...(options.objectPath === undefined ? {} : { objectPath: options.objectPath }),
      ...(options.policyMapEntries === undefined ? {} : { mapSizes: { policy: options.policyMapEntries } }),
    });
    if (options.policyMapEntries !== undefined && datapath.policyCapacity() !== options.policyMapEntries) {
      options.logger.warn(
        { requested: options.policyMapEntries, capacity: datapath.policyCapacity() },
        `The pinned map pal_policy keeps its ${datapath.policyCapacity()} entries, not the ${options.policyMapEntries} asked for: a map is sized when it is created (see docs/agent.md)`,
      );
    }
    if (options.proxyPort === undefined) datapath.setProxy(undefined);
    else {
      const device = installProxyRouting();
      datapath.attachProxyDevice(device.receiverIfindex);
      datapath.setProxy({ ifindex: device.ifindex, port: options.proxyPort, mac: device.mac });
      options.logger.info({ port: options.proxyPort, device: PROXY_DEVICE }, "Flows with HTTP rules are steered to the node's proxy");
    }
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
    return this.#datapath;
  }

  async #start(): Promise<void> {
    this.#server = await serveProbes(this.#options.metricsPort ?? DEFAULT_METRICS_PORT, this.#options.metricsHost, {
      ready: () => this.#isReady,
      notReadyMessage: "not ready: waiting for the first sync",
      metrics: () => renderMetrics(this.metricsSnapshot()),
      log: this.#log,
    });
    const compiled = this.#loop.reconciler.compiled;
    this.#flowEvents = logFlows(this.#datapath, this.#log, { podOf: (id) => compiled.podOfEndpoint(id), ruleOf: (id) => compiled.rule(id) });
    this.#conntrack.start();
    this.#watch.start({
      objectChanged: (kind, key) => this.#loop.objectChanged(kind, key),
      identityObjectsChanged: (keys) => this.#loop.identityObjectsChanged(keys),
    });
    this.#loop.syncEarly();
    this.#log.info({ node: this.#options.nodeName, pinRoot: this.#datapath.pinRoot, metricsPort: this.metricsPort }, "Agent started");
    void this.#runAfterSync();
  }

  async #runAfterSync(): Promise<void> {
    if (!(await this.#watch.waitForSync(this.#abort.signal))) {
      this.#failReady(new Error(`Cannot make agent of node "${this.#options.nodeName}" ready: it stopped before the informers synced`));
      return;
    }
    this.#log.info({}, "Informers synced, starting the full sync");
    // Every initial object is queued by now, so the first commit lands behind all of them.
    this.#loop.start();
  }

  /** Stops watching and serving; pinned maps and attachments stay, so enforcement continues. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#failReady(new Error(`Cannot make agent of node "${this.#options.nodeName}" ready: it was stopped`));
    this.#conntrack.stop();
    await this.#loop.stop();
    await this.#watch.stop();
    this.#flowEvents?.close();
    await this.#server?.close();
    this.#datapath.close();
    this.#log.info({ node: this.#options.nodeName }, "Agent stopped");
  }

  /** The numbers /metrics serves. */
  metricsSnapshot(): MetricsSnapshot {
    const { reconciler } = this.#loop;
    return snapshotMetrics({ compiled: reconciler.compiled, datapath: this.#datapath, reconciler, commitStages: reconciler.commitStages, commitCpu: reconciler.commitCpu, k8sEvents: this.#watch.events });
  }
}
