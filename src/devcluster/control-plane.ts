/**
 * The control plane processes: etcd, kube-apiserver, kube-controller-manager
 * and kube-scheduler, each started detached with its log and pid file in the
 * dev folder, in dependency order, each waited on until healthy.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ControlPlaneBinaries } from "./binaries.ts";
import { apiserverUrl, type ApiserverEndpoint, type ControlPlaneCredentials } from "./credentials.ts";
import { runningPid, startHealthy, stopDetached } from "./detached-process.ts";
import { DevClusterError } from "./errors.ts";
import { httpsRequest, type TlsIdentity } from "./https-client.ts";
import type { DevLayout } from "./layout.ts";

/** Service cluster IP ranges, IPv4 first (the primary family). */
export const SERVICE_CIDRS = ["10.96.0.0/16", "fd00:10:96::/112"];

/**
 * Controllers kube-controller-manager runs: all but the two that manage
 * Nodes, since dev Nodes have no kubelet: node-lifecycle would taint them
 * not-ready and evict their pods, node-ipam would fight over the podCIDRs we
 * assign.
 */
export const CONTROLLERS = "*,-node-lifecycle-controller,-node-ipam-controller";

/** The control plane components, in start order. */
export const COMPONENT_NAMES = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"] as const;

/** One of {@link COMPONENT_NAMES}. */
export type ComponentName = (typeof COMPONENT_NAMES)[number];

const BINARY_FIELD: Readonly<Record<ComponentName, keyof Omit<ControlPlaneBinaries, "dir">>> = {
  etcd: "etcd",
  "kube-apiserver": "kubeApiserver",
  "kube-controller-manager": "kubeControllerManager",
  "kube-scheduler": "kubeScheduler",
};

/** One control plane process. */
export interface ControlPlaneComponent {
  name: ComponentName;
  command: string;
  args: string[];
  /** Answers 200 once the component is healthy. */
  healthUrl: string;
  healthIdentity: TlsIdentity;
  /** How long a start may take to become healthy. */
  startTimeoutMs: number;
}

/** What a control plane needs to run: where, on which address and ports, which binaries and certificates. */
export interface ControlPlaneSetup extends ApiserverEndpoint {
  layout: DevLayout;
  binaries: ControlPlaneBinaries;
  credentials: ControlPlaneCredentials;
  /** kube-apiserver flags beyond these (they win over them). */
  apiserverFlags?: Record<string, string>;
}

/** One component as `dev status` shows it (the control plane's, and the operator). */
export interface ComponentStatus {
  name: string;
  pid?: number;
  running: boolean;
  healthy: boolean;
}

function flags(values: Record<string, string | number | boolean>): string[] {
  return Object.entries(values).map(([name, value]) => `--${name}=${value}`);
}

/**
 * The control plane components of `setup`, in start order.
 *
 * @example
 * ```ts
 * for (const component of controlPlaneComponents(setup)) console.log(component.name, component.args.join(" "));
 * ```
 */
export function controlPlaneComponents(setup: ControlPlaneSetup): ControlPlaneComponent[] {
  const { layout, ports, binaries, credentials: c } = setup;
  const ca = c.pki.caCertFile;
  const etcdUrl = `https://127.0.0.1:${ports.etcd}`;
  const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
  // Serving endpoints check clients against our CA directly: the lookup of
  // the front-proxy CA in the cluster would only log that there is none.
  const delegated = (kubeconfig: string) => ({
    kubeconfig,
    "authentication-kubeconfig": kubeconfig,
    "authorization-kubeconfig": kubeconfig,
    "authentication-skip-lookup": true,
    "client-ca-file": ca,
    "bind-address": "127.0.0.1",
    "leader-elect": false,
  });
  return [
    {
      name: "etcd",
      command: binaries[BINARY_FIELD.etcd],
      args: flags({
        name: "palisade-dev",
        "data-dir": layout.etcdData,
        "listen-client-urls": etcdUrl,
        "advertise-client-urls": etcdUrl,
        "listen-peer-urls": peerUrl,
        "initial-advertise-peer-urls": peerUrl,
        "initial-cluster": `palisade-dev=${peerUrl}`,
        "cert-file": c.etcdServer.certFile,
        "key-file": c.etcdServer.keyFile,
        "trusted-ca-file": ca,
        "client-cert-auth": true,
        "log-level": "warn",
      }),
      healthUrl: `${etcdUrl}/health`,
      healthIdentity: { caCertFile: ca, client: c.etcdClient },
      startTimeoutMs: 30_000,
    },
    {
      name: "kube-apiserver",
      command: binaries[BINARY_FIELD["kube-apiserver"]],
      args: flags({
        "bind-address": setup.apiserverAddress,
        "secure-port": ports.apiserver,
        "etcd-servers": etcdUrl,
        "etcd-cafile": ca,
        "etcd-certfile": c.etcdClient.certFile,
        "etcd-keyfile": c.etcdClient.keyFile,
        "client-ca-file": ca,
        "tls-cert-file": c.apiserver.certFile,
        "tls-private-key-file": c.apiserver.keyFile,
        "authorization-mode": "Node,RBAC",
        "enable-admission-plugins": "NodeRestriction",
        "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
        "service-account-key-file": c.pki.serviceAccountPublicKeyFile,
        "service-account-signing-key-file": c.pki.serviceAccountKeyFile,
        "service-cluster-ip-range": SERVICE_CIDRS.join(","),
        "allow-privileged": true,
        // A control plane alone listens on loopback, which EndpointSlice validation refuses
        // as the kubernetes Service's endpoint; no pod reaches the API through it here anyway.
        "endpoint-reconciler-type": "none",
        // Ends open watches within 5 s of a SIGTERM: without it, the API server waits out the 60 s request timeout on them.
        "shutdown-watch-termination-grace-period": "5s",
        ...setup.apiserverFlags,
      }),
      healthUrl: `${apiserverUrl(setup)}/readyz`,
      healthIdentity: { caCertFile: ca, client: c.admin },
      startTimeoutMs: 90_000,
    },
    {
      name: "kube-controller-manager",
      command: binaries[BINARY_FIELD["kube-controller-manager"]],
      args: flags({
        ...delegated(c.controllerManagerKubeconfig),
        "secure-port": ports.controllerManager,
        "tls-cert-file": c.controllerManagerServing.certFile,
        "tls-private-key-file": c.controllerManagerServing.keyFile,
        controllers: CONTROLLERS,
        "use-service-account-credentials": true,
        "service-account-private-key-file": c.pki.serviceAccountKeyFile,
        "root-ca-file": ca,
        "cluster-signing-cert-file": ca,
        "cluster-signing-key-file": c.pki.caKeyFile,
        "service-cluster-ip-range": SERVICE_CIDRS.join(","),
      }),
      healthUrl: `https://127.0.0.1:${ports.controllerManager}/healthz`,
      healthIdentity: { caCertFile: ca },
      startTimeoutMs: 60_000,
    },
    {
      name: "kube-scheduler",
      command: binaries[BINARY_FIELD["kube-scheduler"]],
      args: flags({
        ...delegated(c.schedulerKubeconfig),
        "secure-port": ports.scheduler,
        "tls-cert-file": c.schedulerServing.certFile,
        "tls-private-key-file": c.schedulerServing.keyFile,
      }),
      healthUrl: `https://127.0.0.1:${ports.scheduler}/healthz`,
      healthIdentity: { caCertFile: ca },
      startTimeoutMs: 60_000,
    },
  ];
}

function pidFile(layout: DevLayout, component: { name: ComponentName }): string {
  return join(layout.run, `${component.name}.pid`);
}

function logFile(layout: DevLayout, component: { name: ComponentName }): string {
  return join(layout.logs, `${component.name}.log`);
}

async function isHealthy(component: ControlPlaneComponent): Promise<boolean> {
  try {
    const response = await httpsRequest(component.healthUrl, component.healthIdentity, { timeoutMs: 2_000 });
    return response.status === 200;
  } catch {
    // Not listening yet, or mid-restart.
    return false;
  }
}

function logTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Starts each component that is not running yet, in order, waiting for each
 * to be healthy before the next (one found on its way out is started anew).
 * `progress` gets one line per component.
 *
 * @example
 * ```ts
 * await startControlPlane(setup, (line) => process.stderr.write(`${line}\n`));
 * ```
 */
export async function startControlPlane(setup: ControlPlaneSetup, progress: (line: string) => void): Promise<void> {
  for (const component of controlPlaneComponents(setup)) {
    const log = logFile(setup.layout, component);
    const { pid, started } = await startHealthy(
      { ...component, logFile: log, pidFile: pidFile(setup.layout, component) },
      {
        healthy: () => isHealthy(component),
        timeoutMs: component.startTimeoutMs,
        failure: (reason) => new DevClusterError(`Cannot start "${component.name}": ${reason === "it exited" ? reason : `${component.healthUrl} ${reason}`}; the end of ${log}:\n${logTail(log)}`),
      },
    );
    progress(started ? `started ${component.name} (pid ${pid})` : `${component.name} already running (pid ${pid})`);
  }
}

/**
 * Stops every component (in reverse start order), SIGTERM then SIGKILL.
 * Needs no certificates, so it works on whatever a failed `up` left.
 * Returns the names of those that were running.
 *
 * @example
 * ```ts
 * await stopControlPlane(layout, binariesIn(state.binariesDir));
 * ```
 */
export async function stopControlPlane(layout: DevLayout, binaries: ControlPlaneBinaries): Promise<ComponentName[]> {
  const stopped: ComponentName[] = [];
  for (const name of [...COMPONENT_NAMES].reverse()) {
    if (await stopDetached(name, pidFile(layout, { name }), binaries[BINARY_FIELD[name]])) stopped.push(name);
  }
  return stopped;
}

/** Each component's process and health (health needs the certificates of `setup`). */
export async function controlPlaneStatus(setup: ControlPlaneSetup): Promise<ComponentStatus[]> {
  return Promise.all(
    controlPlaneComponents(setup).map(async (component) => {
      const pid = runningPid(pidFile(setup.layout, component), component.command);
      const healthy = pid !== undefined && (await isHealthy(component));
      return { name: component.name, ...(pid !== undefined && { pid }), running: pid !== undefined, healthy };
    }),
  );
}
