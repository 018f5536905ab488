/**
 * The local dev cluster: real etcd, kube-apiserver, kube-controller-manager
 * and kube-scheduler built from pinned upstream modules, certificates, and
 * stand-in Nodes; `devUp`/`devDown`/`devStatus` behind `palisade dev`.
 *
 * @module
 */
export { binariesIn, binaryPaths, ensureBinaries, type ControlPlaneBinaries } from "./binaries.ts";
export { LOOPBACK_ADDRESS, readClusterState, type ClusterState } from "./cluster-state.ts";
export {
  COMPONENT_NAMES,
  CONTROLLERS,
  SERVICE_CIDRS,
  controlPlaneComponents,
  controlPlaneStatus,
  startControlPlane,
  stopControlPlane,
  type ComponentName,
  type ComponentStatus,
  type ControlPlaneComponent,
  type ControlPlaneSetup,
} from "./control-plane.ts";
export {
  KUBERNETES_SERVICE_IPS,
  apiserverUrl,
  ensureControlPlaneCredentials,
  type ApiserverEndpoint,
  existingControlPlaneCredentials,
  issueKubeconfig,
  type ControlPlaneCredentials,
  type IssuedKubeconfig,
} from "./credentials.ts";
export { processesUsing, runningPid, startDetached, stopDetached, type DetachedProcessSpec, type ProcessMatch } from "./detached-process.ts";
export {
  DEV_AGENT_METRICS_PORT,
  DEV_PROXY_METRICS_PORT,
  DEV_DOWN_STEPS,
  CONTROL_PLANE_STEPS,
  DEV_UP_STEPS,
  agentMetricsUrl,
  agentsStep,
  httpViewFile,
  proxiesStep,
  proxyMetricsUrl,
  binariesStep,
  clusterNetworkStep,
  controlPlaneStep,
  crdsStep,
  credentialsStep,
  devDown,
  devStatus,
  devUp,
  nodesStep,
  nodeNetworkStep,
  nodeRuntimesStep,
  removeNetworkStep,
  removeStateStep,
  startNodeRuntime,
  stopNodeRuntime,
  stopNodeRuntimesStep,
  stopProxiesStep,
  required,
  settingsStep,
  stopControlPlaneStep,
  type DevDownContext,
  type DevDownStep,
  type DevNodeStatus,
  type DevStatus,
  type DevUpContext,
  type DevUpOptions,
  type DevUpResult,
  type DevUpStep,
} from "./dev-cluster.ts";
export { DevClusterError } from "./errors.ts";
export { httpsRequest, type HttpsRequestOptions, type HttpsResponse, type TlsIdentity } from "./https-client.ts";
export { DEV_CONTEXT, kubeconfigText, writeKubeconfig, type KubeconfigSpec } from "./kubeconfig.ts";
export { DEFAULT_DEV_DIR, devDirFromEnv, devLayout, type DevLayout } from "./layout.ts";
export {
  NODE_UPLINK,
  claimClusterNetwork,
  hostRoutes,
  networkOwner,
  nodeRoutes,
  processesInNetns,
  removeClusterNetwork,
  usedNetworks,
  type GatewayRoute,
} from "./node-network.ts";
export {
  DEFAULT_SLOT,
  MAX_NODES,
  NETWORK_SLOTS,
  NODE_NAME_PREFIX,
  devNetwork,
  devNodeIndex,
  devNodeSpec,
  isSlotNetns,
  isSlotUplink,
  nodeNetnsIndex,
  sandboxNetns,
  type DevNetwork,
  type DevNodeSpec,
} from "./dev-network.ts";
export { listNodes, registerNodes, type NodeSummary } from "./nodes.ts";
export { DevPki, type CertificateFiles, type ClientCredentials, type ServingNames } from "./pki.ts";
export { PORT_SETTINGS, freePort, freePorts, portsFromEnv, type DevPorts } from "./ports.ts";
