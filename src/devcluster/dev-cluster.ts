/**
 * `dev up`, `dev down` and `dev status` as data: `up` and `down` run a list
 * of named steps over a shared context, so later parts of the dev cluster
 * (CRDs, node runtime, operator, agents) are steps added to the lists.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { repositoryRoot } from "../repository-root.ts";
import { KubeClient } from "../k8s/client.ts";
import { isAlreadyExists } from "../k8s/errors.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";
import { runningPid, startDetached, stopDetached } from "./detached-process.ts";
import { removeNodeRuntimeSandboxes, writeNodeNetwork } from "./node-runtime/index.ts";
import { installCni } from "../cni/install.ts";
import { binaryPaths, ensureBinaries, type ControlPlaneBinaries } from "./binaries.ts";
import { LOOPBACK_ADDRESS, readClusterState, writeClusterState, type ClusterState } from "./cluster-state.ts";
import { controlPlaneStatus, startControlPlane, stopControlPlane, type ComponentStatus } from "./control-plane.ts";
import { apiserverUrl, ensureControlPlaneCredentials, existingControlPlaneCredentials, type ControlPlaneCredentials } from "./credentials.ts";
import { DevClusterError } from "./errors.ts";
import type { DevLayout } from "./layout.ts";
import {
  BRIDGE_ADDRESSES,
  CLUSTER_BRIDGE,
  assertClusterNetworkOwner,
  ensureClusterBridge,
  ensureNodeNetworks,
  nodeNamespaceIndexes,
  nodeNetns,
  removeClusterNetwork,
  removeNodeNamespace,
} from "./node-network.ts";
import { NODE_NAME_PREFIX, devNodeSpec, listNodes, registerNodes, type DevNodeSpec, type NodeSummary } from "./nodes.ts";
import { freePort, portsFromEnv, type DevPorts } from "./ports.ts";

/** What `dev up` was asked for. */
export interface DevUpOptions {
  /**
   * How many Nodes; undefined keeps the count the cluster has (at least 1).
   * 0 is a control plane alone: no Nodes and no cluster network, the API server on loopback.
   */
  nodes: number | undefined;
  /**
   * Ports for a new cluster (e.g. from `freePorts()` in tests); default: from
   * the environment. A folder with a recorded cluster keeps its ports.
   */
  ports?: DevPorts;
}

/** What the steps of `dev up` share; each step fills in what later ones need. */
export interface DevUpContext {
  readonly layout: DevLayout;
  readonly options: DevUpOptions;
  /** Reports one line of progress (to stderr in the CLI). */
  readonly progress: (line: string) => void;
  binaries?: ControlPlaneBinaries;
  ports?: DevPorts;
  /** Where the API server listens (see `ClusterState.apiserverAddress`). */
  apiserverAddress?: string;
  credentials?: ControlPlaneCredentials;
  nodes?: DevNodeSpec[];
}

/** One named step of `dev up`. */
export interface DevUpStep {
  name: string;
  run(context: DevUpContext): Promise<void>;
}

/** What the steps of `dev down` share. */
export interface DevDownContext {
  readonly layout: DevLayout;
  /** The recorded state; undefined when no cluster was ever brought up here. */
  readonly state: ClusterState | undefined;
  readonly progress: (line: string) => void;
}

/** One named step of `dev down`. */
export interface DevDownStep {
  name: string;
  run(context: DevDownContext): Promise<void>;
}

/**
 * The value of `field` in `context`, which an earlier step must have set.
 *
 * @example
 * ```ts
 * const ports = required(context, "ports");
 * ```
 */
export function required<K extends "binaries" | "ports" | "apiserverAddress" | "credentials" | "nodes">(context: DevUpContext, field: K): NonNullable<DevUpContext[K]> {
  const value = context[field];
  if (value === undefined) throw new DevClusterError(`Cannot run this dev up step: no step before it set "${field}"`);
  return value as NonNullable<DevUpContext[K]>;
}

/** Builds or finds the control plane binaries. */
export const binariesStep: DevUpStep = {
  name: "binaries",
  async run(context) {
    context.binaries = await ensureBinaries();
  },
};

/** Whether the cluster listening on `apiserverAddress` has nodes, and so the cluster network. */
function hasNodeNetwork(apiserverAddress: string): boolean {
  return apiserverAddress === BRIDGE_ADDRESSES[0];
}

/**
 * Creates the dev folder and records its settings; a folder that has them
 * already keeps its ports and API server address (so `up` again finds the
 * same cluster). The address is the cluster bridge's when the cluster has
 * nodes, loopback for a control plane alone (`nodes: 0`). A cluster with
 * nodes needs the machine's cluster network: when another folder's cluster
 * owns it, this fails before anything is written.
 */
export const settingsStep: DevUpStep = {
  name: "settings",
  async run(context) {
    const { layout } = context;
    const previous = readClusterState(layout);
    const withNodes = context.options.nodes !== 0;
    const apiserverAddress = previous?.apiserverAddress ?? (withNodes ? BRIDGE_ADDRESSES[0] : LOOPBACK_ADDRESS);
    if (withNodes && !hasNodeNetwork(apiserverAddress)) {
      throw new DevClusterError(
        `Cannot bring up dev nodes in "${layout.dir}": its control plane was brought up without nodes and listens on ${apiserverAddress}, ` +
          `which node namespaces cannot reach; take it down first (palisade dev down)`,
      );
    }
    if (hasNodeNetwork(apiserverAddress)) assertClusterNetworkOwner(layout.dir);
    for (const dir of [layout.dir, layout.logs, layout.run]) mkdirSync(dir, { recursive: true });
    if (previous) context.progress(`reusing the ports and address recorded in ${layout.stateFile}`);
    const ports = previous?.ports ?? context.options.ports ?? (await portsFromEnv());
    context.ports = ports;
    context.apiserverAddress = apiserverAddress;
    writeClusterState(layout, { ports, apiserverAddress, binariesDir: required(context, "binaries").dir });
  },
};

/**
 * For a cluster with nodes: the host bridge that is the cluster network,
 * with the address the API server listens on, owned by this dev folder.
 */
export const clusterNetworkStep: DevUpStep = {
  name: "cluster network",
  async run(context) {
    if (!hasNodeNetwork(required(context, "apiserverAddress"))) return;
    await ensureClusterBridge(context.layout.dir);
  },
};

function endpoint(context: DevUpContext): { apiserverAddress: string; ports: DevPorts } {
  return { apiserverAddress: required(context, "apiserverAddress"), ports: required(context, "ports") };
}

/** Issues or reuses the certificates and kubeconfigs. */
export const credentialsStep: DevUpStep = {
  name: "certificates",
  async run(context) {
    context.credentials = ensureControlPlaneCredentials(context.layout, endpoint(context));
  },
};

/** Starts what is not running of etcd, kube-apiserver, kube-controller-manager, kube-scheduler. */
export const controlPlaneStep: DevUpStep = {
  name: "control plane",
  async run(context) {
    await startControlPlane(
      {
        layout: context.layout,
        ...endpoint(context),
        binaries: required(context, "binaries"),
        credentials: required(context, "credentials"),
      },
      context.progress,
    );
  },
};

/** Registers Nodes `palisade-node-1..N`, Ready. */
export const nodesStep: DevUpStep = {
  name: "nodes",
  async run(context) {
    const credentials = required(context, "credentials");
    const identity = { caCertFile: credentials.pki.caCertFile, client: credentials.admin };
    context.nodes = await registerNodes(apiserverUrl(endpoint(context)), identity, context.options.nodes);
    context.progress(`nodes: ${context.nodes.map((node) => node.name).join(", ")}`);
  },
};

/** Applies deploy/crds/ (generated from the API types) server-side and waits until every CRD is Established. */
export const crdsStep: DevUpStep = {
  name: "custom resource definitions",
  async run(context) {
    const kubectl = required(context, "binaries").kubectl;
    const dir = join(repositoryRoot(), "deploy", "crds");
    const args = ["--kubeconfig", context.layout.adminKubeconfig];
    try {
      execFileSync(kubectl, [...args, "apply", "--server-side", "--force-conflicts", "-f", dir], { stdio: ["ignore", "ignore", "pipe"] });
      execFileSync(kubectl, [...args, "wait", "--for=condition=Established", "--timeout=60s", "-f", dir], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (cause) {
      const stderr = (cause as { stderr?: Buffer }).stderr?.toString().trim() ?? "";
      throw new DevClusterError(`Cannot install the CRDs from "${dir}": ${stderr}`, { cause });
    }
    context.progress(`CRDs installed from ${dir}`);
  },
};

function nodeRuntimeFiles(layout: DevLayout, node: string) {
  return {
    name: `node runtime ${node}`,
    pidFile: join(layout.run, `node-runtime-${node}.pid`),
    stateDir: join(layout.dir, "node-runtime", node),
  };
}

/** The 1-based index of a dev node from its name (`palisade-node-<i>`). */
function indexOf(node: string): number {
  return Number(node.slice(NODE_NAME_PREFIX.length));
}

/**
 * Starts, detached inside node `index`'s network namespace (as a kubelet
 * runs on its node), the stand-in node runtime of that node unless one
 * runs. Returns its pid and whether it was started now.
 *
 * @example
 * ```ts
 * startNodeRuntime(devLayout("/tmp/dev"), 1);
 * ```
 */
export function startNodeRuntime(layout: DevLayout, index: number): { pid: number; started: boolean } {
  const spec = devNodeSpec(index);
  const files = nodeRuntimeFiles(layout, spec.name);
  const running = runningPid(files.pidFile, process.execPath);
  if (running !== undefined) return { pid: running, started: false };
  const main = fileURLToPath(new URL("./node-runtime/main.js", import.meta.url));
  const pid = startDetached({
    name: files.name,
    command: process.execPath,
    args: [main, "--node-index", String(index), "--kubeconfig", layout.adminKubeconfig, "--state-dir", files.stateDir],
    logFile: join(layout.logs, `node-runtime-${spec.name}.log`),
    pidFile: files.pidFile,
    netns: nodeNetns(spec),
  });
  return { pid, started: true };
}

/**
 * Stops node `node`'s runtime and removes its pods' network namespaces
 * (nothing happens for what is not there).
 *
 * @example
 * ```ts
 * await stopNodeRuntime(devLayout("/tmp/dev"), "palisade-node-1");
 * ```
 */
export async function stopNodeRuntime(layout: DevLayout, node: string): Promise<void> {
  const files = nodeRuntimeFiles(layout, node);
  await stopDetached(files.name, files.pidFile, process.execPath);
  await removeNodeRuntimeSandboxes(files.stateDir);
  rmSync(files.stateDir, { recursive: true, force: true });
}

/**
 * Starts, in its node's namespace, the stand-in node runtime of every Node
 * that has none running: it turns the Node's Pods into network namespaces.
 * First the node's network is written and `palisade install-cni` chains
 * Palisade's plugin into it, so each interface has the node agent's
 * programs from the start.
 */
export const nodeRuntimesStep: DevUpStep = {
  name: "node runtimes",
  async run(context) {
    for (const node of required(context, "nodes")) {
      const { stateDir } = nodeRuntimeFiles(context.layout, node.name);
      const network = writeNodeNetwork(indexOf(node.name), stateDir);
      await installCni({ confDir: network.confDir, binDir: join(stateDir, "cni-bin"), pinRoot: agentPinRoot(node.name) });
      if (startNodeRuntime(context.layout, indexOf(node.name)).started) context.progress(`started the node runtime of ${node.name} in network namespace ${nodeNetns(node)}`);
    }
  },
};

/** The namespace the operator's Lease and the agents' reports live in. */
export const SYSTEM_NAMESPACE = "palisade-system";

/** Creates namespace palisade-system unless it exists. */
export const systemNamespaceStep: DevUpStep = {
  name: "system namespace",
  async run(context) {
    const client = KubeClient.fromFile(context.layout.adminKubeconfig);
    try {
      await client.request("POST", resourcePath(Resources.namespaces), { body: { apiVersion: "v1", kind: "Namespace", metadata: { name: SYSTEM_NAMESPACE } } });
      context.progress(`created namespace ${SYSTEM_NAMESPACE}`);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  },
};

/** The CLI entry point the operator and agents run from (this build's `dist/src/cli/main.js`). */
function cliMain(): string {
  return fileURLToPath(new URL("../cli/main.js", import.meta.url));
}

function operatorFiles(layout: DevLayout) {
  return { name: "operator", pidFile: join(layout.run, "operator.pid"), logFile: join(layout.logs, "operator.log") };
}

/** Starts, detached, the operator unless one runs; its metrics port is a free one. */
export const operatorStep: DevUpStep = {
  name: "operator",
  async run(context) {
    const files = operatorFiles(context.layout);
    if (runningPid(files.pidFile, process.execPath) !== undefined) return;
    const port = await freePort();
    startDetached({
      name: files.name,
      command: process.execPath,
      args: [cliMain(), "operator", "--kubeconfig", context.layout.adminKubeconfig, "--metrics-port", String(port)],
      logFile: files.logFile,
      pidFile: files.pidFile,
    });
    context.progress(`started the operator (metrics on 127.0.0.1:${port})`);
  },
};

/**
 * Where the dev agents pin their maps: `$PALISADE_DEV_PIN_ROOT` or
 * /sys/fs/bpf/palisade-dev, one folder per node below it. Tests set their own
 * so that they never touch a running dev cluster's pins.
 */
export function devPinBase(env: NodeJS.ProcessEnv = process.env): string {
  return env.PALISADE_DEV_PIN_ROOT ?? "/sys/fs/bpf/palisade-dev";
}

/**
 * The pin root of dev node `node`'s agent: `<devPinBase()>/<node>`.
 *
 * @example
 * ```ts
 * agentPinRoot("palisade-node-1"); // "/sys/fs/bpf/palisade-dev/palisade-node-1"
 * ```
 */
export function agentPinRoot(node: string): string {
  return join(devPinBase(), node);
}

/** The port of every dev agent's /healthz, /readyz and /metrics: each has its node's namespace to itself, as on a real node. */
export const DEV_AGENT_METRICS_PORT = 9962;

/**
 * Where dev node `spec`'s agent serves /healthz, /readyz and /metrics: its
 * node's IPv4 InternalIP, reachable from the host over the cluster bridge.
 *
 * @example
 * ```ts
 * agentMetricsUrl(devNodeSpec(2)); // "http://10.240.0.2:9962"
 * ```
 */
export function agentMetricsUrl(spec: DevNodeSpec): string {
  return `http://${spec.internalIPs[0]}:${DEV_AGENT_METRICS_PORT}`;
}

const AGENT_PREFIX = "agent-";
const AGENT_START_TIMEOUT_MS = 60_000;

function agentFiles(layout: DevLayout, node: string) {
  return {
    name: `agent ${node}`,
    pidFile: join(layout.run, `${AGENT_PREFIX}${node}.pid`),
    // Recorded so that `dev down` removes the pins `up` chose, whatever the environment of `down`.
    pinRootFile: join(layout.run, `${AGENT_PREFIX}${node}.pin-root`),
    logFile: join(layout.logs, `${AGENT_PREFIX}${node}.log`),
  };
}

async function agentHealthy(spec: DevNodeSpec): Promise<boolean> {
  try {
    return (await fetch(`${agentMetricsUrl(spec)}/healthz`, { signal: AbortSignal.timeout(2_000) })).status === 200;
  } catch {
    // Not listening yet.
    return false;
  }
}

async function waitAgentHealthy(layout: DevLayout, spec: DevNodeSpec): Promise<void> {
  const files = agentFiles(layout, spec.name);
  const deadline = Date.now() + AGENT_START_TIMEOUT_MS;
  for (;;) {
    if (runningPid(files.pidFile, process.execPath) === undefined) throw new DevClusterError(`Cannot start the agent of "${spec.name}": it exited; see ${files.logFile}`);
    if (await agentHealthy(spec)) return;
    if (Date.now() > deadline) {
      throw new DevClusterError(`Cannot start the agent of "${spec.name}": ${agentMetricsUrl(spec)}/healthz not healthy after ${AGENT_START_TIMEOUT_MS / 1000} s; see ${files.logFile}`);
    }
    await sleep(100);
  }
}

/**
 * Starts, detached inside its node's network namespace (as a hostNetwork
 * DaemonSet pod runs), the agent of every Node that has none running, each
 * with its own pin root; waits until every agent answers /healthz on its node's address.
 */
export const agentsStep: DevUpStep = {
  name: "agents",
  async run(context) {
    const nodes = required(context, "nodes");
    for (const node of nodes) {
      const files = agentFiles(context.layout, node.name);
      if (runningPid(files.pidFile, process.execPath) !== undefined) continue;
      const pinRoot = agentPinRoot(node.name);
      writeFileSync(files.pinRootFile, `${pinRoot}\n`);
      startDetached({
        name: files.name,
        command: process.execPath,
        args: [cliMain(), "agent", "--node-name", node.name, "--kubeconfig", context.layout.adminKubeconfig, "--pin-root", pinRoot, "--metrics-port", String(DEV_AGENT_METRICS_PORT), "--identities", "cluster"],
        logFile: files.logFile,
        pidFile: files.pidFile,
        netns: nodeNetns(node),
      });
      context.progress(`started the agent of ${node.name} in network namespace ${nodeNetns(node)} (pins in ${pinRoot}, metrics on ${agentMetricsUrl(node)})`);
    }
    for (const node of nodes) await waitAgentHealthy(context.layout, node);
  },
};

/** Stops node `node`'s agent and removes its pin root (and the pin base when that leaves it empty). */
async function stopAgent(layout: DevLayout, node: string): Promise<boolean> {
  const files = agentFiles(layout, node);
  const stopped = await stopDetached(files.name, files.pidFile, process.execPath);
  if (existsSync(files.pinRootFile)) {
    const pinRoot = readFileSync(files.pinRootFile, "utf8").trim();
    rmSync(pinRoot, { recursive: true, force: true });
    const base = join(pinRoot, "..");
    if (existsSync(base) && readdirSync(base).length === 0) rmdirSync(base);
    rmSync(files.pinRootFile, { force: true });
  }
  return stopped;
}

/** The dev nodes this folder has an agent, a node runtime or (owning the cluster network) a namespace of. */
function knownNodes(layout: DevLayout, ownsNetwork: boolean): string[] {
  const names = new Set<string>();
  if (existsSync(layout.run)) {
    for (const file of readdirSync(layout.run)) {
      if (file.startsWith(AGENT_PREFIX) && file.endsWith(".pid")) names.add(file.slice(AGENT_PREFIX.length, -".pid".length));
    }
  }
  const runtimes = join(layout.dir, "node-runtime");
  if (existsSync(runtimes)) for (const node of readdirSync(runtimes)) names.add(node);
  if (ownsNetwork) for (const index of nodeNamespaceIndexes()) names.add(devNodeSpec(index).name);
  return [...names].filter((name) => name.startsWith(NODE_NAME_PREFIX));
}

/**
 * For a cluster with nodes: removes the nodes beyond the registered ones
 * (their agent, node runtime, pods and namespace), then makes every
 * registered node a network namespace on the cluster network with routes
 * to every other node's pods, and the host's routes to all of them.
 */
export const nodeNetworkStep: DevUpStep = {
  name: "node network",
  async run(context) {
    if (!hasNodeNetwork(required(context, "apiserverAddress"))) return;
    const nodes = required(context, "nodes");
    const wanted = new Set(nodes.map((node) => node.name));
    for (const name of knownNodes(context.layout, true).filter((node) => !wanted.has(node))) {
      await stopAgent(context.layout, name);
      await stopNodeRuntime(context.layout, name);
      removeNodeNamespace(indexOf(name));
      context.progress(`removed node ${name}: its agent, node runtime, pods and network namespace`);
    }
    await ensureNodeNetworks(nodes);
    context.progress(`network namespaces ${nodes.map(nodeNetns).join(", ")} on bridge ${CLUSTER_BRIDGE}`);
  },
};

/** The Kubernetes side of `dev up`: control plane, CRDs, Nodes and their network namespaces — no pods run, no Palisade component. */
export const CONTROL_PLANE_STEPS: readonly DevUpStep[] = [binariesStep, settingsStep, clusterNetworkStep, credentialsStep, controlPlaneStep, crdsStep, nodesStep, nodeNetworkStep];

/** The steps of `dev up`, in order: the control plane, then node runtimes, the operator and the agents. */
export const DEV_UP_STEPS: readonly DevUpStep[] = [...CONTROL_PLANE_STEPS, nodeRuntimesStep, systemNamespaceStep, operatorStep, agentsStep];

/** Stops every agent and removes its pin root (and the pin base when that leaves it empty). */
export const stopAgentsStep: DevDownStep = {
  name: "stop agents",
  async run(context) {
    if (!existsSync(context.layout.run)) return;
    const nodes = readdirSync(context.layout.run)
      .filter((file) => file.startsWith(AGENT_PREFIX) && file.endsWith(".pid"))
      .map((file) => file.slice(AGENT_PREFIX.length, -".pid".length));
    for (const node of nodes) {
      await stopAgent(context.layout, node);
      context.progress(`stopped the agent of ${node}`);
    }
  },
};

/** Stops the operator. */
export const stopOperatorStep: DevDownStep = {
  name: "stop operator",
  async run(context) {
    const files = operatorFiles(context.layout);
    if (await stopDetached(files.name, files.pidFile, process.execPath)) context.progress("stopped the operator");
  },
};

/** Stops every node runtime and removes the network namespaces of its pods. */
export const stopNodeRuntimesStep: DevDownStep = {
  name: "stop node runtimes",
  async run(context) {
    const root = join(context.layout.dir, "node-runtime");
    if (!existsSync(root)) return;
    for (const node of readdirSync(root)) await stopNodeRuntime(context.layout, node);
    rmSync(root, { recursive: true, force: true });
    context.progress("node runtimes stopped, pod namespaces removed");
  },
};

/** Stops the control plane processes. */
export const stopControlPlaneStep: DevDownStep = {
  name: "stop control plane",
  async run(context) {
    if (!context.state) return;
    const stopped = await stopControlPlane(context.layout, binaryPaths(context.state.binariesDir));
    context.progress(stopped.length > 0 ? `stopped ${stopped.join(", ")}` : "no control plane process was running");
  },
};

/**
 * Removes the node namespaces, their uplinks, the bridge and the host's
 * routes, if this folder's cluster owns them (even when its state is gone);
 * another folder's network is left alone.
 */
export const removeNetworkStep: DevDownStep = {
  name: "remove network",
  async run(context) {
    if (removeClusterNetwork(context.layout.dir)) context.progress(`removed bridge ${CLUSTER_BRIDGE} and the node network namespaces`);
  },
};

/**
 * Removes what this module keeps in the dev folder, then the folder if that
 * left it empty. Only known entries: the folder comes from the environment,
 * and a mistaken `PALISADE_DEV_DIR` must not cost anyone their files.
 */
export const removeStateStep: DevDownStep = {
  name: "remove state",
  async run(context) {
    const { layout } = context;
    for (const path of [layout.pki, layout.kubeconfigs, layout.adminKubeconfig, layout.etcdData, layout.logs, layout.run, layout.stateFile]) {
      rmSync(path, { recursive: true, force: true });
    }
    if (existsSync(layout.dir) && readdirSync(layout.dir).length === 0) rmdirSync(layout.dir);
    context.progress(`removed ${layout.dir}`);
  },
};

/** The steps of `dev down`, in order. */
export const DEV_DOWN_STEPS: readonly DevDownStep[] = [stopAgentsStep, stopOperatorStep, stopNodeRuntimesStep, stopControlPlaneStep, removeNetworkStep, removeStateStep];

/** What `dev up` leaves for its caller. */
export interface DevUpResult {
  adminKubeconfig: string;
  binariesDir: string;
  apiserver: string;
  nodes: DevNodeSpec[];
}

async function runStep<C>(step: { name: string; run(context: C): Promise<void> }, context: C, progress: (line: string) => void): Promise<void> {
  const started = Date.now();
  progress(`${step.name}…`);
  try {
    await step.run(context);
  } catch (cause) {
    if (cause instanceof DevClusterError) throw cause;
    throw new DevClusterError(`Cannot complete dev step "${step.name}": ${(cause as Error).message}`, { cause });
  }
  progress(`${step.name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * Brings the dev cluster in `layout` up (idempotent: what runs keeps running).
 *
 * @example
 * ```ts
 * const result = await devUp(devLayout(devDirFromEnv()), { nodes: 2 }, (line) => console.error(line));
 * process.env.KUBECONFIG = result.adminKubeconfig;
 * ```
 */
export async function devUp(
  layout: DevLayout,
  options: DevUpOptions,
  progress: (line: string) => void,
  steps: readonly DevUpStep[] = DEV_UP_STEPS,
): Promise<DevUpResult> {
  const context: DevUpContext = { layout, options, progress };
  for (const step of steps) await runStep(step, context, progress);
  return {
    adminKubeconfig: layout.adminKubeconfig,
    binariesDir: required(context, "binaries").dir,
    apiserver: apiserverUrl(endpoint(context)),
    nodes: context.nodes ?? [],
  };
}

/**
 * Takes the dev cluster in `layout` down: every process stopped, its state
 * removed (the binary cache stays).
 *
 * @example
 * ```ts
 * await devDown(devLayout(devDirFromEnv()), (line) => console.error(line));
 * ```
 */
export async function devDown(layout: DevLayout, progress: (line: string) => void, steps: readonly DevDownStep[] = DEV_DOWN_STEPS): Promise<void> {
  const context: DevDownContext = { layout, state: readClusterState(layout), progress };
  for (const step of steps) await runStep(step, context, progress);
}

/** A Node as `dev status` shows it: the API's view, and what runs for it on this machine. */
export interface DevNodeStatus extends NodeSummary {
  /** The node's network namespace, when it exists. */
  netns?: string;
  /** The node runtime's pid, when it runs. */
  runtimePid?: number;
  /** The agent's pid, when it runs. */
  agentPid?: number;
  /** Where the agent serves /healthz and /metrics; undefined when this folder never started one. */
  agentUrl?: string;
  /** Whether the agent answers /healthz there. */
  agentHealthy: boolean;
}

/** What `dev status` reports. */
export interface DevStatus {
  dir: string;
  /** Undefined when no cluster was brought up in `dir`. */
  apiserver?: string;
  components: ComponentStatus[];
  /** The cluster's Nodes, or why they could not be listed. */
  nodes: DevNodeStatus[] | { error: string };
}

async function nodeStatus(layout: DevLayout, node: NodeSummary): Promise<DevNodeStatus> {
  const status: DevNodeStatus = { ...node, agentHealthy: false };
  const index = indexOf(node.name);
  if (!node.name.startsWith(NODE_NAME_PREFIX) || !Number.isInteger(index)) return status;
  const spec = devNodeSpec(index);
  if (nodeNamespaceIndexes().includes(index)) status.netns = nodeNetns(spec);
  const runtimePid = runningPid(nodeRuntimeFiles(layout, node.name).pidFile, process.execPath);
  if (runtimePid !== undefined) status.runtimePid = runtimePid;
  const agent = agentFiles(layout, node.name);
  if (existsSync(agent.pinRootFile)) {
    status.agentUrl = agentMetricsUrl(spec);
    const agentPid = runningPid(agent.pidFile, process.execPath);
    if (agentPid !== undefined) {
      status.agentPid = agentPid;
      status.agentHealthy = await agentHealthy(spec);
    }
  }
  return status;
}

/**
 * The processes, their health, and the Nodes of the dev cluster in
 * `layout`, each with its network namespace, node runtime and agent.
 *
 * @example
 * ```ts
 * const status = await devStatus(devLayout(devDirFromEnv()));
 * ```
 */
export async function devStatus(layout: DevLayout): Promise<DevStatus> {
  const state = readClusterState(layout);
  if (!state) return { dir: layout.dir, components: [], nodes: [] };
  const credentials = existingControlPlaneCredentials(layout, state);
  const components = await controlPlaneStatus({ layout, ...state, binaries: binaryPaths(state.binariesDir), credentials });
  const apiserver = apiserverUrl(state);
  let nodes: DevStatus["nodes"];
  try {
    const listed = await listNodes(apiserver, { caCertFile: credentials.pki.caCertFile, client: credentials.admin });
    nodes = await Promise.all(listed.map((node) => nodeStatus(layout, node)));
  } catch (error) {
    nodes = { error: (error as Error).message };
  }
  return { dir: layout.dir, apiserver, components, nodes };
}
