/**
 * `dev up`, `dev down` and `dev status` as data: `up` and `down` run a list
 * of named steps over a shared context, so later parts of the dev cluster
 * (CRDs, node runtime, operator, agents) are steps added to the lists.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, sep } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { repositoryRoot } from "../repository-root.ts";
import { KubeClient } from "../k8s/client.ts";
import { isAlreadyExists } from "../k8s/errors.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";
import { TLS_MATERIAL_NAMESPACE } from "../policy/tls-material.ts";
import { PROXY_NODE_FLAGS } from "../datapath/transparent-socket.ts";
import { processesUsing, runningPid, startDetached, startHealthy, stopDetached, stopProcessesUsing, type ProcessMatch } from "./detached-process.ts";
import { removeNodeRuntimeSandboxes, writeNodeNetwork } from "./node-runtime/index.ts";
import { installCni } from "../cni/install.ts";
import { binaryPaths, ensureBinaries, type ControlPlaneBinaries } from "./binaries.ts";
import { LOOPBACK_ADDRESS, readClusterState, writeClusterState, type ClusterState } from "./cluster-state.ts";
import { controlPlaneStatus, startControlPlane, stopControlPlane, type ComponentStatus } from "./control-plane.ts";
import { apiserverUrl, ensureControlPlaneCredentials, existingControlPlaneCredentials, type ControlPlaneCredentials } from "./credentials.ts";
import { DevClusterError } from "./errors.ts";
import type { DevLayout } from "./layout.ts";
import { claimClusterNetwork, ensureClusterBridge, ensureNodeNetworks, networkOwner, nodeNamespaceIndexes, removeClusterNetwork, removeNodeNamespace, usedNetworks } from "./node-network.ts";
import { DEFAULT_SLOT, NETWORK_SLOTS, devNetwork, devNodeIndex, devNodeSpec, type DevNetwork, type DevNodeSpec } from "./dev-network.ts";
import { DEFAULT_DEV_DIR } from "./layout.ts";
import { listNodes, registerNodes, type NodeSummary } from "./nodes.ts";
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
  /** kube-apiserver flags for a new cluster beyond the dev cluster's own (recorded, so restarts keep them). */
  apiserverFlags?: Record<string, string>;
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
  /** See `ClusterState.apiserverFlags`. */
  apiserverFlags?: Record<string, string>;
  /** The cluster network; undefined for a control plane alone. */
  network?: DevNetwork;
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
export function required<K extends "binaries" | "ports" | "apiserverAddress" | "network" | "credentials" | "nodes">(context: DevUpContext, field: K): NonNullable<DevUpContext[K]> {
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

/**
 * The slots a folder's new cluster may claim: slot 0 for the default folder
 * (the addresses the README shows), any other slot for any other folder.
 */
function candidateSlots(dir: string): number[] {
  const others = Array.from({ length: NETWORK_SLOTS }, (_, slot) => slot).filter((slot) => slot !== DEFAULT_SLOT);
  return dir === DEFAULT_DEV_DIR ? [DEFAULT_SLOT] : others;
}

/**
 * Creates the dev folder and records its settings; a folder that has them
 * already keeps its ports, network slot and API server address (so `up`
 * again finds the same cluster). A cluster with nodes claims a network slot
 * of its own (see dev-network.ts) and its API server listens on the slot's
 * bridge; a control plane alone (`nodes: 0`) listens on loopback. When no
 * slot is free for this folder, this fails before anything is written.
 */
export const settingsStep: DevUpStep = {
  name: "settings",
  async run(context) {
    const { layout } = context;
    const previous = readClusterState(layout);
    const withNodes = context.options.nodes !== 0;
    if (withNodes && previous !== undefined && previous.networkSlot === undefined) {
      throw new DevClusterError(
        `Cannot bring up dev nodes in "${layout.dir}": its control plane was brought up without nodes and listens on ${previous.apiserverAddress}, ` +
          `which node namespaces cannot reach; take it down first (palisade dev down)`,
      );
    }
    const slots = previous?.networkSlot !== undefined ? [previous.networkSlot] : withNodes ? candidateSlots(layout.dir) : [];
    const network = slots.length > 0 ? await claimClusterNetwork(layout.dir, slots) : undefined;
    for (const dir of [layout.dir, layout.logs, layout.run]) mkdirSync(dir, { recursive: true });
    if (previous) context.progress(`reusing the ports, address and network recorded in ${layout.stateFile}`);
    // Only the default folder's cluster has the documented ports; any other takes free ones (unless told), so it runs beside it.
    const ports = previous?.ports ?? context.options.ports ?? (await portsFromEnv(process.env, layout.dir === DEFAULT_DEV_DIR ? "default" : "free"));
    const apiserverAddress = previous?.apiserverAddress ?? network?.bridgeAddresses[0] ?? LOOPBACK_ADDRESS;
    const apiserverFlags = previous ? previous.apiserverFlags : context.options.apiserverFlags;
    context.ports = ports;
    context.apiserverAddress = apiserverAddress;
    if (network) context.network = network;
    if (apiserverFlags) context.apiserverFlags = apiserverFlags;
    writeClusterState(layout, {
      ports,
      apiserverAddress,
      binariesDir: required(context, "binaries").dir,
      ...(network && { networkSlot: network.slot }),
      ...(apiserverFlags && { apiserverFlags }),
    });
  },
};

/**
 * For a cluster with nodes: the host bridge that is the cluster network,
 * with the address the API server listens on.
 */
export const clusterNetworkStep: DevUpStep = {
  name: "cluster network",
  async run(context) {
    if (context.network === undefined) return;
    await ensureClusterBridge(context.network, context.layout.dir);
    context.progress(`cluster network on bridge ${context.network.bridge} (${context.network.bridgeAddresses.join(", ")})`);
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
        ...(context.apiserverFlags && { apiserverFlags: context.apiserverFlags }),
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
    context.nodes = await registerNodes(apiserverUrl(endpoint(context)), identity, required(context, "network"), context.options.nodes);
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
      await waitEstablished(kubectl, [...args, "wait", "--for=condition=Established", "--timeout=60s", "-f", dir]);
    } catch (cause) {
      const stderr = (cause as { stderr?: Buffer }).stderr?.toString().trim() ?? "";
      throw new DevClusterError(`Cannot install the CRDs from "${dir}": ${stderr}`, { cause });
    }
    context.progress(`CRDs installed from ${dir}`);
  },
};

/**
 * Runs `kubectl wait` for CRDs to be Established. kubectl fails at once, instead of waiting, on a CRD whose
 * status has no conditions yet (`.status.conditions accessor error: <nil>`), as a just-created one may have
 * on a busy API server: such a wait is asked again, for at most the wait's own timeout.
 */
async function waitEstablished(kubectl: string, args: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      execFileSync(kubectl, args, { stdio: ["ignore", "ignore", "pipe"] });
      return;
    } catch (cause) {
      const stderr = (cause as { stderr?: Buffer }).stderr?.toString() ?? "";
      if (!stderr.includes(".status.conditions accessor error") || Date.now() > deadline) throw cause;
      await delay(250);
    }
  }
}

function nodeRuntimeFiles(layout: DevLayout, node: string) {
  return {
    name: `node runtime ${node}`,
    pidFile: join(layout.run, `node-runtime-${node}.pid`),
    stateDir: join(layout.dir, "node-runtime", node),
  };
}

/**
 * Starts, detached inside node `index`'s network namespace of `network` (as
 * a kubelet runs on its node), the stand-in node runtime of that node unless
 * one runs. Returns its pid and whether it was started now.
 *
 * @example
 * ```ts
 * startNodeRuntime(devLayout("/tmp/dev"), devNetwork(1), 1);
 * ```
 */
export function startNodeRuntime(layout: DevLayout, network: DevNetwork, index: number): { pid: number; started: boolean } {
  const spec = devNodeSpec(network, index);
  const files = nodeRuntimeFiles(layout, spec.name);
  const running = runningPid(files.pidFile, clusterNodeProcess(layout));
  if (running !== undefined) return { pid: running, started: false };
  const main = fileURLToPath(new URL("./node-runtime/main.js", import.meta.url));
  const pid = startDetached({
    name: files.name,
    command: process.execPath,
    args: [main, "--node-index", String(index), "--network-slot", String(network.slot), "--kubeconfig", layout.adminKubeconfig, "--state-dir", files.stateDir],
    logFile: join(layout.logs, `node-runtime-${spec.name}.log`),
    pidFile: files.pidFile,
    netns: spec.netns,
  });
  return { pid, started: true };
}

/**
 * Stops node `node`'s runtime and removes its pods' network namespaces
 * (nothing happens for what is not there; `log` reports a pod whose network
 * could not be undone by CNI, see {@linkcode removeNodeRuntimeSandboxes}).
 *
 * @example
 * ```ts
 * await stopNodeRuntime(devLayout("/tmp/dev"), "palisade-node-1", console.error);
 * ```
 */
export async function stopNodeRuntime(layout: DevLayout, node: string, log: (line: string) => void): Promise<void> {
  const files = nodeRuntimeFiles(layout, node);
  await stopDetached(files.name, files.pidFile, clusterNodeProcess(layout));
  await removeNodeRuntimeSandboxes(files.stateDir, log);
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
      const cniNetwork = writeNodeNetwork(node, stateDir);
      await installCni({ confDir: cniNetwork.confDir, binDir: join(stateDir, "cni-bin"), pinRoot: node.pinRoot });
      if (startNodeRuntime(context.layout, required(context, "network"), node.index).started) context.progress(`started the node runtime of ${node.name} in network namespace ${node.netns}`);
    }
  },
};

/** The namespace the operator's Lease and the agents' reports live in. */
export const SYSTEM_NAMESPACE = "palisade-system";

/**
 * Creates namespaces palisade-system and palisade-secrets (the operator's
 * copies of TLS material for the proxies) unless they exist.
 */
export const systemNamespaceStep: DevUpStep = {
  name: "system namespaces",
  async run(context) {
    const client = KubeClient.fromFile(context.layout.adminKubeconfig);
    for (const name of [SYSTEM_NAMESPACE, TLS_MATERIAL_NAMESPACE]) {
      try {
        await client.request("POST", resourcePath(Resources.namespaces), { body: { apiVersion: "v1", kind: "Namespace", metadata: { name } } });
        context.progress(`created namespace ${name}`);
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
    }
  },
};

/** The CLI entry point the operator and agents run from (this build's `dist/src/cli/main.js`). */
function cliMain(): string {
  return fileURLToPath(new URL("../cli/main.js", import.meta.url));
}

/**
 * How the cluster's Node.js processes (operator, node runtimes, agents,
 * proxies) are known by their pid files: Node.js with an argument in the
 * cluster's folder. Not by this Node.js binary's path: each checkout has its
 * own, and `dev up` or `dev down` from one must see what another started.
 */
function clusterNodeProcess(layout: DevLayout): ProcessMatch {
  return { executableName: basename(realpathSync(process.execPath)), dir: layout.dir };
}

/**
 * The cluster processes of `layout`'s folder that run another checkout's
 * code, by checkout (its repository root): Node.js processes of the folder
 * whose script lies outside this build.
 */
function otherCheckoutProcesses(layout: DevLayout): Map<string, number[]> {
  const build = `${dirname(dirname(import.meta.dirname))}${sep}`;
  const found = new Map<string, number[]>();
  for (const pid of processesUsing(layout.dir)) {
    let script: string | undefined;
    try {
      script = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(1).find((arg) => arg.endsWith(".js"));
    } catch {
      // Gone meanwhile.
      continue;
    }
    if (script === undefined || script.startsWith(build)) continue;
    let checkout: string;
    try {
      checkout = repositoryRoot(dirname(script));
    } catch {
      checkout = dirname(script);
    }
    found.set(checkout, [...(found.get(checkout) ?? []), pid]);
  }
  return found;
}

/**
 * Says so when the folder's cluster runs another checkout's code: `dev up`
 * keeps what runs and starts only what is stopped, from this build (as an
 * agent upgrade does: its agents stopped, `dev up` from the new build), so
 * the user sees which of their processes are not this checkout's.
 */
function noteOtherCheckouts(layout: DevLayout, progress: (line: string) => void): void {
  for (const [checkout, pids] of otherCheckoutProcesses(layout)) {
    progress(
      `the cluster in "${layout.dir}" runs processes of another checkout, ${checkout} (pids ${pids.join(", ")}): they keep running, ` +
        `what is stopped starts from ${repositoryRoot()}; to run this checkout's code throughout, "PALISADE_DEV_DIR=${layout.dir} palisade dev down" first, ` +
        `or give this checkout a folder of its own in PALISADE_DEV_DIR`,
    );
  }
}

function operatorFiles(layout: DevLayout) {
  return { name: "operator", pidFile: join(layout.run, "operator.pid"), logFile: join(layout.logs, "operator.log") };
}

/** Starts, detached, the operator unless one runs; its metrics port is a free one. */
export const operatorStep: DevUpStep = {
  name: "operator",
  async run(context) {
    const files = operatorFiles(context.layout);
    if (runningPid(files.pidFile, clusterNodeProcess(context.layout)) !== undefined) return;
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

/** The port of every dev agent's /healthz, /readyz and /metrics: each has its node's namespace to itself, as on a real node. */
export const DEV_AGENT_METRICS_PORT = 9962;

/**
 * Where dev node `spec`'s agent serves /healthz, /readyz and /metrics: its
 * node's IPv4 InternalIP, reachable from the host over the cluster bridge.
 *
 * @example
 * ```ts
 * agentMetricsUrl(devNodeSpec(devNetwork(0), 2)); // "http://10.240.0.2:9962"
 * ```
 */
export function agentMetricsUrl(spec: DevNodeSpec): string {
  return `http://${spec.internalIPs[0]}:${DEV_AGENT_METRICS_PORT}`;
}

const AGENT_PREFIX = "agent-";
const NODE_PROCESS_START_TIMEOUT_MS = 60_000;

function agentFiles(layout: DevLayout, node: string) {
  return {
    name: `agent ${node}`,
    pidFile: join(layout.run, `${AGENT_PREFIX}${node}.pid`),
    // Recorded so that `dev down` removes the pins `up` chose, whatever the environment of `down`.
    pinRootFile: join(layout.run, `${AGENT_PREFIX}${node}.pin-root`),
    logFile: join(layout.logs, `${AGENT_PREFIX}${node}.log`),
  };
}

/** Whether the probe server at `url` (an agent's, a proxy's) answers /healthz. */
async function healthyAt(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })).status === 200;
  } catch {
    // Not listening yet.
    return false;
  }
}

/**
 * Makes `palisade ARGS` (the agent or the proxy of `node`) run detached in
 * the node's network namespace and answer /healthz at `url`; whether it was
 * started now (false: it ran already).
 */
async function startNodeProcess(layout: DevLayout, node: DevNodeSpec, what: string, files: { name: string; pidFile: string; logFile: string }, args: string[], url: string, nodeFlags: readonly string[] = []): Promise<boolean> {
  const { started } = await startHealthy(
    { name: files.name, command: process.execPath, match: clusterNodeProcess(layout), args: [...nodeFlags, cliMain(), ...args], logFile: files.logFile, pidFile: files.pidFile, netns: node.netns },
    {
      healthy: () => healthyAt(url),
      timeoutMs: NODE_PROCESS_START_TIMEOUT_MS,
      failure: (reason) => new DevClusterError(`Cannot start the ${what} of "${node.name}": ${reason === "it exited" ? reason : `${url}/healthz ${reason}`}; see ${files.logFile}`),
    },
  );
  return started;
}

/**
 * Starts, detached inside its node's network namespace (as a hostNetwork
 * DaemonSet pod runs), the agent of every Node that has none running, each
 * with its own pin root; waits until every agent answers /healthz on its
 * node's address (an agent found on its way out is started anew).
 */
export const agentsStep: DevUpStep = {
  name: "agents",
  async run(context) {
    await Promise.all(
      required(context, "nodes").map(async (node) => {
        const files = agentFiles(context.layout, node.name);
        writeFileSync(files.pinRootFile, `${node.pinRoot}\n`);
        const args = ["agent", "--node-name", node.name, "--kubeconfig", context.layout.adminKubeconfig, "--pin-root", node.pinRoot, "--metrics-port", String(DEV_AGENT_METRICS_PORT), "--identities", "cluster", "--http-view-file", httpViewFile(context.layout, node.name)];
        const started = await startNodeProcess(context.layout, node, "agent", files, args, agentMetricsUrl(node));
        if (started) context.progress(`started the agent of ${node.name} in network namespace ${node.netns} (pins in ${node.pinRoot}, metrics on ${agentMetricsUrl(node)})`);
      }),
    );
  },
};

/** The port of every dev proxy's /healthz, /readyz and /metrics, on its node's address like the agent's. */
export const DEV_PROXY_METRICS_PORT = 9963;

/**
 * Where dev node `spec`'s proxy serves /healthz, /readyz and /metrics.
 *
 * @example
 * ```ts
 * proxyMetricsUrl(devNodeSpec(devNetwork(0), 2)); // "http://10.240.0.2:9963"
 * ```
 */
export function proxyMetricsUrl(spec: DevNodeSpec): string {
  return `http://${spec.internalIPs[0]}:${DEV_PROXY_METRICS_PORT}`;
}

/**
 * The HTTP view file of dev node `node`: the agent writes it, the proxy
 * reads it. It lives in the node's state folder, as /run/palisade does on a
 * real node.
 *
 * @example
 * ```ts
 * httpViewFile(devLayout("/tmp/dev"), "palisade-node-1"); // "/tmp/dev/node-runtime/palisade-node-1/http-view.json"
 * ```
 */
export function httpViewFile(layout: DevLayout, node: string): string {
  return join(nodeRuntimeFiles(layout, node).stateDir, "http-view.json");
}

const PROXY_PREFIX = "proxy-";

function proxyFiles(layout: DevLayout, node: string) {
  return {
    name: `proxy ${node}`,
    pidFile: join(layout.run, `${PROXY_PREFIX}${node}.pid`),
    logFile: join(layout.logs, `${PROXY_PREFIX}${node}.log`),
  };
}

/**
 * Starts, detached inside its node's network namespace beside the agent (a
 * container of the same hostNetwork pod on a real node), the proxy of every
 * Node that has none running, with the node's pin root and HTTP view file;
 * waits until each answers /healthz on its node's address. A proxy that
 * runs is left alone, whatever happens to the agent: restarting an agent
 * never touches a proxied connection.
 */
export const proxiesStep: DevUpStep = {
  name: "proxies",
  async run(context) {
    await Promise.all(
      required(context, "nodes").map(async (node) => {
        const files = proxyFiles(context.layout, node.name);
        // The kubeconfig: the proxy watches the TLS material termination presents (namespace palisade-secrets).
        const args = ["proxy", "--http-view-file", httpViewFile(context.layout, node.name), "--pin-root", node.pinRoot, "--metrics-port", String(DEV_PROXY_METRICS_PORT), "--kubeconfig", context.layout.adminKubeconfig];
        const started = await startNodeProcess(context.layout, node, "proxy", files, args, proxyMetricsUrl(node), PROXY_NODE_FLAGS);
        if (started) context.progress(`started the proxy of ${node.name} in network namespace ${node.netns} (view ${httpViewFile(context.layout, node.name)}, metrics on ${proxyMetricsUrl(node)})`);
      }),
    );
  },
};

/** Stops node `node`'s proxy; whether one ran. */
async function stopProxy(layout: DevLayout, node: string): Promise<boolean> {
  const files = proxyFiles(layout, node);
  return stopDetached(files.name, files.pidFile, clusterNodeProcess(layout));
}

/** The nodes that have a pid file named `PREFIX<node>.pid` in the run folder. */
function nodesWithPidFiles(layout: DevLayout, prefix: string): string[] {
  if (!existsSync(layout.run)) return [];
  return readdirSync(layout.run)
    .filter((file) => file.startsWith(prefix) && file.endsWith(".pid"))
    .map((file) => file.slice(prefix.length, -".pid".length));
}

/** Stops node `node`'s agent and removes its pin root (and the pin base when that leaves it empty). */
async function stopAgent(layout: DevLayout, node: string): Promise<boolean> {
  const files = agentFiles(layout, node);
  const stopped = await stopDetached(files.name, files.pidFile, clusterNodeProcess(layout));
  if (existsSync(files.pinRootFile)) {
    const pinRoot = readFileSync(files.pinRootFile, "utf8").trim();
    rmSync(pinRoot, { recursive: true, force: true });
    const base = join(pinRoot, "..");
    if (existsSync(base) && readdirSync(base).length === 0) rmdirSync(base);
    rmSync(files.pinRootFile, { force: true });
  }
  return stopped;
}

/** The dev nodes this folder has an agent, a proxy, a node runtime or a namespace on `network` of. */
function knownNodes(layout: DevLayout, network: DevNetwork): string[] {
  const names = new Set<string>([...nodesWithPidFiles(layout, AGENT_PREFIX), ...nodesWithPidFiles(layout, PROXY_PREFIX)]);
  const runtimes = join(layout.dir, "node-runtime");
  if (existsSync(runtimes)) for (const node of readdirSync(runtimes)) names.add(node);
  for (const index of nodeNamespaceIndexes(network)) names.add(devNodeSpec(network, index).name);
  return [...names].filter((name) => devNodeIndex(name) !== undefined);
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
    const { network } = context;
    if (network === undefined) return;
    const nodes = required(context, "nodes");
    const wanted = new Set(nodes.map((node) => node.name));
    for (const name of knownNodes(context.layout, network).filter((node) => !wanted.has(node))) {
      await stopProxy(context.layout, name);
      await stopAgent(context.layout, name);
      await stopNodeRuntime(context.layout, name, context.progress);
      await removeNodeNamespace(devNodeSpec(network, devNodeIndex(name) as number));
      context.progress(`removed node ${name}: its proxy, agent, node runtime, pods and network namespace`);
    }
    await ensureNodeNetworks(network, nodes);
    context.progress(`network namespaces ${nodes.map((node) => node.netns).join(", ")} on bridge ${network.bridge}`);
  },
};

/** The Kubernetes side of `dev up`: control plane, CRDs, Nodes and their network namespaces — no pods run, no Palisade component. */
export const CONTROL_PLANE_STEPS: readonly DevUpStep[] = [binariesStep, settingsStep, clusterNetworkStep, credentialsStep, controlPlaneStep, crdsStep, nodesStep, nodeNetworkStep];

/** The steps of `dev up`, in order: the control plane, then node runtimes, the operator, the agents and the proxies. */
export const DEV_UP_STEPS: readonly DevUpStep[] = [...CONTROL_PLANE_STEPS, nodeRuntimesStep, systemNamespaceStep, operatorStep, agentsStep, proxiesStep];

/** A `dev down` step that stops the `component` of every node with a pid file under `prefix`. */
function stopPerNodeStep(name: string, component: string, prefix: string, stop: (layout: DevLayout, node: string) => Promise<unknown>): DevDownStep {
  return {
    name,
    async run(context) {
      for (const node of nodesWithPidFiles(context.layout, prefix)) {
        await stop(context.layout, node);
        context.progress(`stopped the ${component} of ${node}`);
      }
    },
  };
}

/** Stops every agent and removes its pin root (and the pin base when that leaves it empty). */
export const stopAgentsStep = stopPerNodeStep("stop agents", "agent", AGENT_PREFIX, stopAgent);

/** Stops every proxy. */
export const stopProxiesStep = stopPerNodeStep("stop proxies", "proxy", PROXY_PREFIX, stopProxy);

/** Stops the operator. */
export const stopOperatorStep: DevDownStep = {
  name: "stop operator",
  async run(context) {
    const files = operatorFiles(context.layout);
    if (await stopDetached(files.name, files.pidFile, clusterNodeProcess(context.layout))) context.progress("stopped the operator");
  },
};

/** Stops every node runtime and removes the network namespaces of its pods. */
export const stopNodeRuntimesStep: DevDownStep = {
  name: "stop node runtimes",
  async run(context) {
    const root = join(context.layout.dir, "node-runtime");
    if (!existsSync(root)) return;
    for (const node of readdirSync(root)) await stopNodeRuntime(context.layout, node, context.progress);
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
 * Stops every process still naming this folder in its arguments: the
 * processes above were stopped by their pid files, and this finds whatever
 * a killed `up` or `down` left without one.
 */
export const stopStraysStep: DevDownStep = {
  name: "stop strays",
  async run(context) {
    const stopped = await stopProcessesUsing(context.layout.dir);
    if (stopped.length > 0) context.progress(`stopped ${stopped.length} process(es) still using ${context.layout.dir}: pids ${stopped.join(", ")}`);
  },
};

/**
 * Removes this folder's cluster network: whatever still runs in its node
 * and pod namespaces, the namespaces, uplinks, pins and bridge (the host's
 * routes go with it). Found by the bridge naming this folder even when its
 * state is gone, or by the recorded slot when only the bridge is gone;
 * another folder's network is left alone.
 */
export const removeNetworkStep: DevDownStep = {
  name: "remove network",
  async run(context) {
    const networks = usedNetworks()
      .filter(({ owner }) => owner === context.layout.dir)
      .map(({ network }) => network);
    const recorded = context.state?.networkSlot;
    if (recorded !== undefined && networkOwner(devNetwork(recorded)) === undefined) networks.push(devNetwork(recorded));
    for (const network of networks) {
      await removeClusterNetwork(network);
      context.progress(`removed the network of slot ${network.slot}: bridge ${network.bridge}, node and pod namespaces, pins`);
    }
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
export const DEV_DOWN_STEPS: readonly DevDownStep[] = [stopProxiesStep, stopAgentsStep, stopOperatorStep, stopNodeRuntimesStep, stopControlPlaneStep, stopStraysStep, removeNetworkStep, removeStateStep];

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
 * Brings the dev cluster in `layout` up (idempotent: what runs keeps running,
 * whichever checkout started it; what is stopped starts from this build, and
 * processes of another checkout are named). When the folder held no cluster and a step fails, everything this call
 * made is taken down again (as by {@link devDown}) before the error is
 * thrown, so a failed first `up` leaves nothing behind; a cluster that ran
 * before is left running as far as it got.
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
  noteOtherCheckouts(layout, progress);
  const context: DevUpContext = { layout, options, progress };
  const fresh = readClusterState(layout) === undefined;
  try {
    for (const step of steps) await runStep(step, context, progress);
  } catch (error) {
    if (fresh) {
      progress(`dev up failed (${(error as Error).message.split("\n")[0]}); taking down what it started`);
      await devDown(layout, progress).catch((cause: unknown) => progress(`cleanup after the failed dev up also failed: ${(cause as Error).message}`));
    }
    throw error;
  }
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
  /** Whether this folder started a node runtime for the node (so one should run). */
  runtimeStarted: boolean;
  /** The node runtime's pid, when it runs. */
  runtimePid?: number;
  /** The agent's pid, when it runs. */
  agentPid?: number;
  /** Where the agent serves /healthz and /metrics; undefined when this folder never started one. */
  agentUrl?: string;
  /** Whether the agent answers /healthz there. */
  agentHealthy: boolean;
  /** The proxy's pid, when it runs. */
  proxyPid?: number;
  /** Where the proxy serves /healthz and /metrics; undefined when this folder did not start one (or stopped it). */
  proxyUrl?: string;
  /** Whether the proxy answers /healthz there. */
  proxyHealthy: boolean;
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

/** An agent's or proxy's pid (when it runs) and whether it answers /healthz at `url`. */
async function nodeProcessStatus(layout: DevLayout, pidFile: string, url: string): Promise<{ url: string; pid: number | undefined; healthy: boolean }> {
  const pid = runningPid(pidFile, clusterNodeProcess(layout));
  return { url, pid, healthy: pid !== undefined && (await healthyAt(url)) };
}

async function nodeStatus(layout: DevLayout, network: DevNetwork | undefined, node: NodeSummary): Promise<DevNodeStatus> {
  const status: DevNodeStatus = { ...node, runtimeStarted: false, agentHealthy: false, proxyHealthy: false };
  const index = devNodeIndex(node.name);
  if (network === undefined || index === undefined) return status;
  const spec = devNodeSpec(network, index);
  if (nodeNamespaceIndexes(network).includes(index)) status.netns = spec.netns;
  status.runtimeStarted = existsSync(nodeRuntimeFiles(layout, node.name).stateDir);
  const runtimePid = runningPid(nodeRuntimeFiles(layout, node.name).pidFile, clusterNodeProcess(layout));
  if (runtimePid !== undefined) status.runtimePid = runtimePid;
  const agent = agentFiles(layout, node.name);
  if (existsSync(agent.pinRootFile)) {
    const { url, pid, healthy } = await nodeProcessStatus(layout, agent.pidFile, agentMetricsUrl(spec));
    Object.assign(status, { agentUrl: url, agentHealthy: healthy }, pid !== undefined && { agentPid: pid });
  }
  const proxy = proxyFiles(layout, node.name);
  // Started by this folder and not stopped since (stopping removes the pid file): it should run.
  if (existsSync(proxy.pidFile)) {
    const { url, pid, healthy } = await nodeProcessStatus(layout, proxy.pidFile, proxyMetricsUrl(spec));
    Object.assign(status, { proxyUrl: url, proxyHealthy: healthy }, pid !== undefined && { proxyPid: pid });
  }
  return status;
}

/**
 * The processes, their health, and the Nodes of the dev cluster in
 * `layout`, each with its network namespace, node runtime, agent and proxy.
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
  const operator = operatorFiles(layout);
  if (existsSync(operator.pidFile)) {
    // Started by this folder and not stopped since (stopping removes the pid file): it should run.
    const pid = runningPid(operator.pidFile, clusterNodeProcess(layout));
    components.push({ name: operator.name, ...(pid !== undefined && { pid }), running: pid !== undefined, healthy: pid !== undefined });
  }
  const apiserver = apiserverUrl(state);
  let nodes: DevStatus["nodes"];
  try {
    const listed = await listNodes(apiserver, { caCertFile: credentials.pki.caCertFile, client: credentials.admin });
    const network = state.networkSlot === undefined ? undefined : devNetwork(state.networkSlot);
    nodes = await Promise.all(listed.map((node) => nodeStatus(layout, network, node)));
  } catch (error) {
    nodes = { error: (error as Error).message };
  }
  return { dir: layout.dir, apiserver, components, nodes };
}
