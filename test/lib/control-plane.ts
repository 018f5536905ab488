/**
 * A throwaway control plane for cluster tests: etcd, kube-apiserver and the
 * controllers started by the dev cluster's own steps in a temporary folder
 * on free ports, with the CRDs installed and no Nodes, operator or agents,
 * so a test runs exactly the components it wants and never touches a
 * developer's cluster. `stop()` takes it all down and removes the folder.
 */
import { join } from "node:path";
import { binariesStep, controlPlaneStep, credentialsStep, crdsStep, devUp, freePorts, settingsStep } from "../../src/devcluster/index.ts";
import { KubeClient } from "../../src/k8s/client.ts";
import { testFolder } from "./test-folder.ts";

/** A running test control plane. */
export interface TestControlPlane {
  /** The admin kubeconfig file. */
  kubeconfig: string;
  /** The kubectl binary of the same build. */
  kubectl: string;
  /** A client with admin rights. */
  client: KubeClient;
  /** Stops every process and removes the folder. */
  stop(): Promise<void>;
}

/** Starts a control plane in a new temporary folder; `purpose` names the folder (`pl-<purpose>-…`). */
export async function startTestControlPlane(purpose: string): Promise<TestControlPlane> {
  const folder = testFolder(purpose);
  const { layout } = folder;
  let binariesDir: string;
  try {
    ({ binariesDir } = await devUp(layout, { nodes: 0, ports: await freePorts() }, () => {}, [binariesStep, settingsStep, credentialsStep, controlPlaneStep, crdsStep]));
  } catch (e) {
    await folder.remove();
    throw e;
  }
  return { kubeconfig: layout.adminKubeconfig, kubectl: join(binariesDir, "kubectl"), client: KubeClient.fromFile(layout.adminKubeconfig), stop: () => folder.remove() };
}
