/**
 * A throwaway control plane for cluster tests: etcd, kube-apiserver and the
 * controllers started by the dev cluster's own steps in a temporary folder
 * on free ports, with the CRDs installed and no Nodes, operator or agents,
 * so a test runs exactly the components it wants and never touches a
 * developer's cluster. A test can stop and restart the API server, reach it
 * through a port of its own (a proxy that models a partition), and compact
 * etcd. `stop()` takes it all down and removes the folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  binariesStep,
  binaryPaths,
  controlPlaneStep,
  credentialsStep,
  crdsStep,
  devUp,
  existingControlPlaneCredentials,
  freePorts,
  httpsRequest,
  readClusterState,
  settingsStep,
  stopDetached,
  type ClusterState,
  type DevUpStep,
} from "../../src/devcluster/index.ts";
import { KubeClient } from "../../src/k8s/client.ts";
import { Kubeconfig } from "../../src/k8s/kubeconfig.ts";
import { testFolder } from "./test-folder.ts";

/** A running test control plane. */
export interface TestControlPlane {
  /** The admin kubeconfig file. */
  kubeconfig: string;
  /** The kubectl binary of the same build. */
  kubectl: string;
  /** A client with admin rights. */
  client: KubeClient;
  /** The API server's port on 127.0.0.1. */
  apiserverPort: number;
  /** An admin client to 127.0.0.1:`port` instead, e.g. a proxy in front of the API server. */
  clientVia(port: number): KubeClient;
  /** Stops the API server as a rolling restart would: SIGTERM, and SIGKILL if it has not exited 10 s later. */
  stopApiserver(): Promise<void>;
  /** Starts the API server again and waits until it is ready. */
  startApiserver(): Promise<void>;
  /** Compacts etcd up to its current revision, so every older resourceVersion is gone; returns that revision. */
  compactEtcd(): Promise<number>;
  /** Stops every process and removes the folder. */
  stop(): Promise<void>;
}

const STEPS: readonly DevUpStep[] = [binariesStep, settingsStep, credentialsStep, controlPlaneStep, crdsStep];

/**
 * Starts a control plane in a new temporary folder; `purpose` names the
 * folder (`pl-<purpose>-…`), `apiserverFlags` are kube-apiserver flags beyond
 * the dev cluster's own.
 */
export async function startTestControlPlane(purpose: string, options: { apiserverFlags?: Record<string, string> } = {}): Promise<TestControlPlane> {
  const folder = testFolder(purpose);
  const { layout } = folder;
  let state: ClusterState | undefined;
  try {
    await devUp(layout, { nodes: 0, ports: await freePorts(), ...options }, () => {}, STEPS);
    state = readClusterState(layout);
  } catch (e) {
    await folder.remove();
    throw e;
  }
  assert.ok(state);
  const recorded = state;
  const binaries = binaryPaths(recorded.binariesDir);
  const credentials = existingControlPlaneCredentials(layout, recorded);
  return {
    kubeconfig: layout.adminKubeconfig,
    kubectl: binaries.kubectl,
    client: KubeClient.fromFile(layout.adminKubeconfig),
    apiserverPort: recorded.ports.apiserver,
    clientVia(port) {
      return new KubeClient(Kubeconfig.fromFile(layout.adminKubeconfig).withServer(`https://127.0.0.1:${port}`));
    },
    async stopApiserver() {
      await stopDetached("kube-apiserver", join(layout.run, "kube-apiserver.pid"), binaries.kubeApiserver);
    },
    async startApiserver() {
      // The steps start what does not run, and wait until it is healthy.
      await devUp(layout, { nodes: 0 }, () => {}, STEPS);
    },
    async compactEtcd() {
      const etcd = `https://127.0.0.1:${recorded.ports.etcd}`;
      const identity = { caCertFile: credentials.pki.caCertFile, client: credentials.etcdClient };
      const range = await httpsRequest(`${etcd}/v3/kv/range`, identity, { method: "POST", body: { key: Buffer.from("/").toString("base64") } });
      const revision = Number((JSON.parse(range.body) as { header: { revision: string } }).header.revision);
      const compacted = await httpsRequest(`${etcd}/v3/kv/compaction`, identity, { method: "POST", body: { revision: String(revision), physical: true } });
      assert.equal(compacted.status, 200, compacted.body);
      return revision;
    },
    stop: () => folder.remove(),
  };
}
