/**
 * The stand-in node runtime of one dev node: what a kubelet and container
 * runtime do for networking, and nothing more. It watches the Pods bound to
 * its node; for each it builds a sandbox (network namespace wired by CNI,
 * a pod server on every declared TCP, UDP and SCTP container port) and
 * reports the pod Running and Ready with its addresses; on delete it tears
 * the sandbox down and removes the Pod object. Sandboxes survive a restart of the
 * runtime and are adopted (or removed, if their pod is gone) on start.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Informer, KubeClient, PatchType, Resources, WorkQueue, isNotFound, jsonLogger, resourcePath, type Logger } from "../../k8s/index.ts";
import { devNodeSpec, sandboxNetns, type DevNetwork, type DevNodeSpec } from "../dev-network.ts";
import { primaryConfigFile } from "../../cni/config.ts";
import { SANDBOX_NETNS_ANNOTATION } from "../../probe/index.ts";
import { CNI_PATH, nodeNetworkConfig, type CniNetwork } from "./cni.ts";
import { httpModeOfPortName } from "./pod-server.ts";
import type { PodServerPort } from "./pod-server.ts";
import {
  createSandbox,
  destroySandbox,
  listSandboxes,
  restartSandboxServer,
  sandboxDamage,
  sandboxServerRunning,
  type SandboxRecord,
  type SandboxStore,
} from "./sandbox.ts";

/** What {@linkcode runNodeRuntime} needs. */
export interface NodeRuntimeOptions {
  /** The cluster's network (see dev-network.ts). */
  network: DevNetwork;
  /** The dev node's index (see `devNodeSpec`): chooses its Node, pod CIDRs and namespace names. */
  nodeIndex: number;
  /** A kubeconfig allowed to watch Pods and write their status and deletion. */
  kubeconfig: string;
  /**
   * The runtime's own folder: sandbox records, IPAM leases, pod server logs,
   * and the node's CNI network (see {@linkcode nodeNetwork}).
   */
  stateDir: string;
  /** Where to log; JSON lines on stderr by default. */
  logger?: Logger;
}

/** A running node runtime. */
export interface NodeRuntime {
  /** Resolves once the first list of Pods has been acted on. */
  readonly synced: Promise<void>;
  /** Stops watching; sandboxes keep running (a later run adopts them). */
  stop(): Promise<void>;
}

/**
 * Where the runtime of a node with folder `stateDir` finds its CNI network:
 * configuration in `net.d/`, plugins in `cni-bin/` (where `palisade
 * install-cni` puts its own) and Debian's folder.
 *
 * @example
 * ```ts
 * nodeNetwork("/var/lib/palisade/dev/node-runtime/palisade-node-1").confDir; // ".../palisade-node-1/net.d"
 * ```
 */
export function nodeNetwork(stateDir: string): CniNetwork {
  return { confDir: join(stateDir, "net.d"), binDirs: [join(stateDir, "cni-bin"), CNI_PATH] };
}

/**
 * Writes dev node `spec`'s own network (ptp + host-local over its pod
 * CIDRs, leases under `stateDir`) unless its configuration folder has one,
 * as a node's network plugin does when it starts. Returns the network.
 *
 * @example
 * ```ts
 * writeNodeNetwork(devNodeSpec(devNetwork(0), 1), "/var/lib/palisade/dev/node-runtime/palisade-node-1");
 * ```
 */
export function writeNodeNetwork(spec: DevNodeSpec, stateDir: string): CniNetwork {
  const network = nodeNetwork(stateDir);
  if (primaryConfigFile(network.confDir) === undefined) {
    const name = `palisade-${spec.name}`;
    mkdirSync(network.confDir, { recursive: true });
    writeFileSync(join(network.confDir, `10-${name}.conflist`), `${JSON.stringify(nodeNetworkConfig({ name, podCIDRs: spec.podCIDRs, ipamDataDir: join(stateDir, "ipam") }), null, 2)}\n`);
  }
  return network;
}

/**
 * Tears down every sandbox a node runtime recorded in `stateDir` (for
 * `dev down`, after the runtime was stopped, before `stateDir` with its IPAM
 * leases is removed). A sandbox whose CNI DEL fails (its network
 * configuration gone, say) is still stopped and its namespace deleted, and
 * `log` says so. Returns how many it removed.
 *
 * @example
 * ```ts
 * await removeNodeRuntimeSandboxes("/var/lib/palisade/dev/node-runtime/palisade-node-1", console.error);
 * ```
 */
export async function removeNodeRuntimeSandboxes(stateDir: string, log: (line: string) => void): Promise<number> {
  const store: SandboxStore = { stateDir, network: nodeNetwork(stateDir) };
  const records = listSandboxes(store);
  for (const record of records) {
    await destroySandbox(store, record, (error) => log(`pod ${record.namespace}/${record.name}: ${error.message}; its namespace ${record.netns} is removed without it`));
  }
  return records.length;
}

/** How often the runtime checks that every sandbox's pod server still runs. */
const SERVER_CHECK_MS = 2_000;

function declaredPorts(pod: V1Pod): { serve: PodServerPort[]; unsupported: string[] } {
  const serve: PodServerPort[] = [];
  const unsupported: string[] = [];
  const seen = new Set<string>();
  for (const container of [...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always"), ...(pod.spec?.containers ?? [])]) {
    for (const port of container.ports ?? []) {
      const protocol = port.protocol ?? "TCP";
      const key = `${port.containerPort}/${protocol}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const mode = protocol === "TCP" ? httpModeOfPortName(port.name) : undefined;
      if (protocol === "TCP" || protocol === "UDP" || protocol === "SCTP") serve.push({ port: port.containerPort, protocol, ...(mode !== undefined && { mode }) });
      else unsupported.push(key);
    }
  }
  return { serve, unsupported };
}

function runningStatus(pod: V1Pod, record: SandboxRecord, hostIP: string): Record<string, unknown> {
  const previous = new Map((pod.status?.conditions ?? []).map((c) => [c.type, c]));
  const conditions = ["PodScheduled", "Initialized", "ContainersReady", "Ready"].map((type) => ({
    type,
    status: "True",
    // Keep the time a condition first became True, so status does not change on every pass.
    lastTransitionTime: previous.get(type)?.status === "True" ? previous.get(type)?.lastTransitionTime : record.startedAt,
  }));
  return {
    phase: "Running",
    hostIP,
    hostIPs: [{ ip: hostIP }],
    podIP: record.ips[0],
    podIPs: record.ips.map((ip) => ({ ip })),
    startTime: pod.status?.startTime ?? record.startedAt,
    conditions,
    containerStatuses: (pod.spec?.containers ?? []).map((container) => ({
      name: container.name,
      image: container.image ?? "",
      imageID: "",
      containerID: `palisade://${record.uid}/${container.name}`,
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: record.startedAt } },
    })),
  };
}

function reportsSandbox(pod: V1Pod, record: SandboxRecord): boolean {
  const status = pod.status;
  return (
    status?.phase === "Running" &&
    (status.podIPs ?? []).map((p) => p.ip).join(",") === record.ips.join(",") &&
    (status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
  );
}

/**
 * Starts the node runtime of one dev node; it runs until {@linkcode NodeRuntime.stop}.
 *
 * @example
 * ```ts
 * const runtime = runNodeRuntime({ network: devNetwork(0), nodeIndex: 1, kubeconfig, stateDir });
 * await runtime.synced;
 * // …
 * await runtime.stop();
 * ```
 */
export function runNodeRuntime(options: NodeRuntimeOptions): NodeRuntime {
  const { stateDir } = options;
  const spec = devNodeSpec(options.network, options.nodeIndex);
  const nodeName = spec.name;
  const log = options.logger ?? jsonLogger("info", { component: "node-runtime", node: nodeName });
  mkdirSync(stateDir, { recursive: true });
  const store: SandboxStore = { stateDir, network: writeNodeNetwork(spec, stateDir) };
  const hostIP = spec.internalIPs[0];
  const client = KubeClient.fromFile(options.kubeconfig);
  const records = new Map(listSandboxes(store).map((record) => [record.uid, record]));
  const pods = new Map<string, V1Pod>();
  const queue = new WorkQueue<string>({ name: `node-runtime ${nodeName}`, logger: log, baseDelayMs: 200 });
  const informer = new Informer<V1Pod>({ client, resource: Resources.pods, fieldSelector: `spec.nodeName=${nodeName}`, logger: log });
  const track = (pod: V1Pod): void => {
    const uid = pod.metadata?.uid;
    if (uid === undefined) return;
    pods.set(uid, pod);
    queue.add(uid);
  };
  informer.addHandlers({
    onAdd: track,
    onUpdate: (_, pod) => track(pod),
    onDelete: (pod) => {
      const uid = pod.metadata?.uid;
      if (uid === undefined) return;
      pods.delete(uid);
      queue.add(uid);
    },
  });

  const reconcile = async (uid: string): Promise<void> => {
    const pod = pods.get(uid);
    let record = records.get(uid);
    const fields = { uid, ...(pod ? { namespace: pod.metadata?.namespace, pod: pod.metadata?.name } : record ? { namespace: record.namespace, pod: record.name } : {}) };
    const phase = pod?.status?.phase;
    if (pod === undefined || pod.metadata?.deletionTimestamp !== undefined || phase === "Succeeded" || phase === "Failed") {
      if (record) {
        await destroySandbox(store, record);
        records.delete(uid);
        log.info({ ...fields, netns: record.netns }, "Sandbox removed");
      }
      if (pod?.metadata?.deletionTimestamp !== undefined) {
        // No kubelet confirms the containers stopped, so finish the deletion ourselves, for exactly this pod.
        const path = resourcePath(Resources.pods, { namespace: pod.metadata.namespace, name: pod.metadata.name });
        try {
          await client.request("DELETE", path, { body: { kind: "DeleteOptions", apiVersion: "v1", gracePeriodSeconds: 0, preconditions: { uid } } });
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
      return;
    }
    const damage = record && sandboxDamage(record, spec.podCIDRs.length);
    if (record && damage !== undefined) {
      // The pod's addresses change with a rebuild, so it happens only when the network itself is broken.
      log.warn({ ...fields, netns: record.netns, ips: record.ips, reason: damage }, "Sandbox broken, rebuilding it");
      await destroySandbox(store, record);
      records.delete(uid);
      record = undefined;
    } else if (record && !sandboxServerRunning(record)) {
      log.warn({ ...fields, netns: record.netns, serverPid: record.serverPid }, "Pod server not running, restarting it in its sandbox (the pod keeps its addresses)");
      await restartSandboxServer(store, record);
    }
    if (record === undefined) {
      const { serve, unsupported } = declaredPorts(pod);
      if (unsupported.length > 0) log.warn({ ...fields, ports: unsupported }, "Ports of protocols the pod server does not serve are left closed");
      record = await createSandbox(store, {
        uid,
        namespace: pod.metadata?.namespace ?? "",
        name: pod.metadata?.name ?? "",
        netns: sandboxNetns(options.network, spec, uid),
        ports: serve,
      });
      records.set(uid, record);
      log.info({ ...fields, netns: record.netns, ips: record.ips, hostInterface: record.hostInterface }, "Sandbox created");
    }
    const path = { namespace: pod.metadata?.namespace, name: pod.metadata?.name };
    if (pod.metadata?.annotations?.[SANDBOX_NETNS_ANNOTATION] !== record.netns) {
      // Before the pod is Ready: whoever sees it Ready finds its namespace (palisade probe does).
      await client.request("PATCH", resourcePath(Resources.pods, path), {
        body: { metadata: { uid, annotations: { [SANDBOX_NETNS_ANNOTATION]: record.netns } } },
        contentType: PatchType.merge,
      });
    }
    if (!reportsSandbox(pod, record)) {
      await client.request("PATCH", resourcePath(Resources.pods, { ...path, subresource: "status" }), {
        body: { metadata: { uid }, status: runningStatus(pod, record, hostIP) },
        contentType: PatchType.merge,
      });
    }
  };

  const workers = queue.runWorkers(2, reconcile);
  // As a kubelet notices a container that exited: a pod server that died is looked at again (and restarted) without waiting for an event.
  const serverCheck = setInterval(() => {
    for (const [uid, record] of records) if (record.serverPid > 0 && !sandboxServerRunning(record)) queue.add(uid);
  }, SERVER_CHECK_MS);
  informer.start();
  const synced = (async () => {
    if (!(await informer.waitForSync())) return;
    // Records of pods that no longer exist are cleaned up by the same path as a delete.
    for (const uid of records.keys()) queue.add(uid);
    await queue.idle();
  })();
  return {
    synced,
    async stop() {
      clearInterval(serverCheck);
      await informer.stop();
      queue.shutdown();
      await workers;
    },
  };
}
