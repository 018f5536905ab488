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
import { fileURLToPath } from "node:url";
import { repositoryRoot } from "../repository-root.ts";
import { KubeClient } from "../k8s/client.ts";
import { isAlreadyExists } from "../k8s/errors.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";
import { runningPid, startDetached, stopDetached } from "./detached-process.ts";
import { removeNodeRuntimeSandboxes } from "./node-runtime/index.ts";
import { binaryPaths, ensureBinaries, type ControlPlaneBinaries } from "./binaries.ts";
import { readClusterState, writeClusterState, type ClusterState } from "./cluster-state.ts";
import { controlPlaneStatus, startControlPlane, stopControlPlane, type ComponentStatus } from "./control-plane.ts";
import { apiserverUrl, ensureControlPlaneCredentials, existingControlPlaneCredentials, type ControlPlaneCredentials } from "./credentials.ts";
import { DevClusterError } from "./errors.ts";
import type { DevLayout } from "./layout.ts";
import { listNodes, registerNodes, type DevNodeSpec, type NodeSummary } from "./nodes.ts";
import { freePort, portsFromEnv, type DevPorts } from "./ports.ts";

/** What `dev up` was asked for. */
export interface DevUpOptions {
  /** How many Nodes to register. */
  /** How many Nodes; undefined keeps the count the cluster has (at least 1). */
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
export function required<K extends "binaries" | "ports" | "credentials" | "nodes">(context: DevUpContext, field: K): NonNullable<DevUpContext[K]> {
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
 * Creates the dev folder and records its settings; a folder that has them
 * already keeps its ports (so `up` again finds the same cluster).
 */
export const settingsStep: DevUpStep = {
  name: "settings",
  async run(context) {
    const { layout } = context;
    for (const dir of [layout.dir, layout.logs, layout.run]) mkdirSync(dir, { recursive: true });
    const previous = readClusterState(layout);
    if (previous) context.progress(`reusing the ports recorded in ${layout.stateFile}`);
    const ports = previous?.ports ?? context.options.ports ?? (await portsFromEnv());
    context.ports = ports;
    writeClusterState(layout, { ports, binariesDir: required(context, "binaries").dir });
  },
};

/** Issues or reuses the certificates and kubeconfigs. */
export const credentialsStep: DevUpStep = {
  name: "certificates",
  async run(context) {
    context.credentials = ensureControlPlaneCredentials(context.layout, required(context, "ports"));
  },
};

/** Starts what is not running of etcd, kube-apiserver, kube-controller-manager, kube-scheduler. */
export const controlPlaneStep: DevUpStep = {
  name: "control plane",
  async run(context) {
    await startControlPlane(
      {
        layout: context.layout,
        ports: required(context, "ports"),
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
    context.nodes = await registerNodes(apiserverUrl(required(context, "ports")), identity, context.options.nodes);
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

/** Starts, detached, the stand-in node runtime of every Node that has none running: it turns the Node's Pods into network namespaces. */
export const nodeRuntimesStep: DevUpStep = {
  name: "node runtimes",
  async run(context) {
    const main = fileURLToPath(new URL("./node-runtime/main.js", import.meta.url));
    for (const [i, node] of required(context, "nodes").entries()) {
      const files = nodeRuntimeFiles(context.layout, node.name);
      if (runningPid(files.pidFile, process.execPath) !== undefined) continue;
      startDetached({
        name: files.name,
        command: process.execPath,
        args: [main, "--node-index", String(i + 1), "--kubeconfig", context.layout.adminKubeconfig, "--state-dir", files.stateDir],
        logFile: join(context.layout.logs, `node-runtime-${node.name}.log`),
        pidFile: files.pidFile,
      });
      context.progress(`started the node runtime of ${node.name}`);
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

const AGENT_PREFIX = "agent-";

function agentFiles(layout: DevLayout, node: string) {
  return {
    name: `agent ${node}`,
    pidFile: join(layout.run, `${AGENT_PREFIX}${node}.pid`),
    // Recorded so that `dev down` removes the pins `up` chose, whatever the environment of `down`.
    pinRootFile: join(layout.run, `${AGENT_PREFIX}${node}.pin-root`),
    logFile: join(layout.logs, `${AGENT_PREFIX}${node}.log`),
  };
}

/** Starts, detached, the agent of every Node that has none running, each with its own pin root and a free metrics port. */
export const agentsStep: DevUpStep = {
  name: "agents",
  async run(context) {
    for (const node of required(context, "nodes")) {
      const files = agentFiles(context.layout, node.name);
      if (runningPid(files.pidFile, process.execPath) !== undefined) continue;
      const pinRoot = join(devPinBase(), node.name);
      const port = await freePort();
      writeFileSync(files.pinRootFile, `${pinRoot}\n`);
      startDetached({
        name: files.name,
        command: process.execPath,
        args: [cliMain(), "agent", "--node-name", node.name, "--kubeconfig", context.layout.adminKubeconfig, "--pin-root", pinRoot, "--metrics-port", String(port), "--identities", "cluster"],
        logFile: files.logFile,
        pidFile: files.pidFile,
      });
      context.progress(`started the agent of ${node.name} (pins in ${pinRoot}, metrics on port ${port})`);
    }
  },
};

/** The Kubernetes side of `dev up`: control plane, CRDs and Nodes — no pods run, no Palisade component. */
export const CONTROL_PLANE_STEPS: readonly DevUpStep[] = [binariesStep, settingsStep, credentialsStep, controlPlaneStep, crdsStep, nodesStep];

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
      const files = agentFiles(context.layout, node);
      await stopDetached(files.name, files.pidFile, process.execPath);
      if (existsSync(files.pinRootFile)) {
        const pinRoot = readFileSync(files.pinRootFile, "utf8").trim();
        rmSync(pinRoot, { recursive: true, force: true });
        const base = join(pinRoot, "..");
        if (existsSync(base) && readdirSync(base).length === 0) rmdirSync(base);
        rmSync(files.pinRootFile, { force: true });
      }
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
    for (const node of readdirSync(root)) {
      const files = nodeRuntimeFiles(context.layout, node);
      await stopDetached(files.name, files.pidFile, process.execPath);
      await removeNodeRuntimeSandboxes(files.stateDir);
    }
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
export const DEV_DOWN_STEPS: readonly DevDownStep[] = [stopAgentsStep, stopOperatorStep, stopNodeRuntimesStep, stopControlPlaneStep, removeStateStep];

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
    apiserver: apiserverUrl(required(context, "ports")),
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

/** What `dev status` reports. */
export interface DevStatus {
  dir: string;
  /** Undefined when no cluster was brought up in `dir`. */
  apiserver?: string;
  components: ComponentStatus[];
  /** The cluster's Nodes, or why they could not be listed. */
  nodes: NodeSummary[] | { error: string };
}

/**
 * The processes, their health, and the Nodes of the dev cluster in `layout`.
 *
 * @example
 * ```ts
 * const status = await devStatus(devLayout(devDirFromEnv()));
 * ```
 */
export async function devStatus(layout: DevLayout): Promise<DevStatus> {
  const state = readClusterState(layout);
  if (!state) return { dir: layout.dir, components: [], nodes: [] };
  const credentials = existingControlPlaneCredentials(layout, state.ports);
  const components = await controlPlaneStatus({ layout, ports: state.ports, binaries: binaryPaths(state.binariesDir), credentials });
  const apiserver = apiserverUrl(state.ports);
  let nodes: DevStatus["nodes"];
  try {
    nodes = await listNodes(apiserver, { caCertFile: credentials.pki.caCertFile, client: credentials.admin });
  } catch (error) {
    nodes = { error: (error as Error).message };
  }
  return { dir: layout.dir, apiserver, components, nodes };
}
