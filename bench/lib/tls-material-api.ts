/**
 * Where the TLS benchmark's proxy gets its termination certificate: a
 * throwaway control plane (test/lib/control-plane.ts: etcd and
 * kube-apiserver, no nodes) holding the operator's copy of the certificate
 * Secret in namespace `palisade-secrets`, as the operator would write it
 * (named by `tlsMaterialName`, labelled `palisade.dev/tls-material=true`),
 * which the real `palisade proxy` watches with `--kubeconfig`. The proxy
 * runs in the node's network namespace and the API server on the host's
 * loopback: two socket relays (socket-relay.ts) join them through a Unix
 * socket, so the proxy dials the kubeconfig's own `https://127.0.0.1:PORT`.
 * Once the proxy holds the copy the control plane can be stopped (the proxy
 * keeps what it read through an API server outage), so that its processes
 * use no CPU during the measurement. Everything is registered on the
 * cleanup stack as it is made.
 *
 * @module
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TLS_MATERIAL_LABEL, TLS_MATERIAL_NAMESPACE, tlsMaterialName } from "../../src/policy/tls-material.ts";
import { startTestControlPlane } from "../../test/lib/control-plane.ts";
import type { CleanupStack } from "./cleanup.ts";
import { waitForListener } from "./listener.ts";
import type { PrepareProxy } from "./proxied-pods.ts";

const CLI_PATH = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const RELAY_JS = fileURLToPath(new URL("./socket-relay.js", import.meta.url));

/** A `kubernetes.io/tls` Secret of a pod namespace: the certificate and key files it holds. */
export interface CertificateSecret {
  namespace: string;
  name: string;
  certPath: string;
  keyPath: string;
}

function relay(cleanup: CleanupStack, what: string, command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"] });
  cleanup.add(what, () => child.kill("SIGKILL"));
  return child;
}

/** The control plane holding the copies, as the benchmark uses it. */
export interface TlsMaterialApi {
  /** What {@link setUpProxiedPods} runs before the proxy starts: the relay in the node namespace; returns `--kubeconfig`. */
  prepare: PrepareProxy;
  /** Stops the control plane now (else the cleanup does). */
  stop(): void;
}

/**
 * Starts the control plane and writes the copies of `secrets`; `dir` holds
 * the relay's socket.
 *
 * @example
 * ```ts
 * const api = await startTlsMaterialApi(cleanup, [{ namespace: "bench", name: "api-tls", certPath, keyPath }], dir, log);
 * const pods = await setUpProxiedPods(cleanup, policies, api.prepare);
 * ```
 */
export async function startTlsMaterialApi(cleanup: CleanupStack, secrets: readonly CertificateSecret[], dir: string, log: (line: string) => void): Promise<TlsMaterialApi> {
  log("tls: starting a throwaway control plane for the TLS material");
  const controlPlane = await startTestControlPlane("bench-tls");
  // Synchronous, so that it also runs from a signal: `palisade dev down` on the control plane's folder.
  const devDir = dirname(controlPlane.kubeconfig);
  const stop = cleanup.add(`control plane in ${devDir}`, () => {
    spawnSync(process.execPath, [CLI_PATH, "dev", "down"], { env: { ...process.env, PALISADE_DEV_DIR: devDir }, stdio: "ignore" });
    rmSync(dirname(devDir), { recursive: true, force: true });
  });
  const kubectl = (...args: string[]) => execFileSync(controlPlane.kubectl, ["--kubeconfig", controlPlane.kubeconfig, ...args], { stdio: ["ignore", "ignore", "inherit"] });
  kubectl("create", "namespace", TLS_MATERIAL_NAMESPACE);
  for (const secret of secrets) {
    const name = tlsMaterialName({ kind: "Secret", namespace: secret.namespace, name: secret.name });
    if (name === undefined) throw new Error(`Cannot copy Secret ${secret.namespace}/${secret.name}: its copy's name would be too long`);
    kubectl("-n", TLS_MATERIAL_NAMESPACE, "create", "secret", "tls", name, `--cert=${secret.certPath}`, `--key=${secret.keyPath}`);
    kubectl("-n", TLS_MATERIAL_NAMESPACE, "label", "secret", name, `${TLS_MATERIAL_LABEL}=true`);
  }

  const socket = join(dir, "apiserver.sock");
  const port = controlPlane.apiserverPort;
  // The relays carry only the loopback address; a control plane without nodes listens there.
  if (!readFileSync(controlPlane.kubeconfig, "utf8").includes(`https://127.0.0.1:${port}`)) throw new Error(`Cannot relay the API server: ${controlPlane.kubeconfig} names no https://127.0.0.1:${port}`);
  const hostRelay = relay(cleanup, `API server relay at ${socket}`, process.execPath, [RELAY_JS, socket, String(port)]);
  const deadline = performance.now() + 10_000;
  while (!existsSync(socket)) {
    if (hostRelay.exitCode !== null || performance.now() > deadline) throw new Error(`Cannot relay the API server: no socket at ${socket}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // A copy outside the control plane's folder: stopping it ends every process whose command line names that folder.
  const kubeconfig = join(dir, "proxy.kubeconfig");
  copyFileSync(controlPlane.kubeconfig, kubeconfig);
  const prepare: PrepareProxy = async (node) => {
    const nodeRelay = relay(cleanup, `API server relay in ${node}`, "nsenter", [`--net=/var/run/netns/${node}`, process.execPath, RELAY_JS, String(port), socket]);
    await waitForListener(node, port, () => (nodeRelay.exitCode === null ? undefined : `the relay exited with ${nodeRelay.exitCode}`));
    return ["--kubeconfig", kubeconfig];
  };
  return { prepare, stop };
}
