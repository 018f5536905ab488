/**
 * The dev cluster's stand-in node runtime: Pods bound to a dev node become
 * network namespaces wired by the real CNI plugins, with a small server on
 * every declared container port: TCP and UDP echo, SCTP associations
 * answered over raw sockets.
 *
 * @module
 */
export { CNI_PATH, POD_INTERFACE, cniAdd, cniDel, nodeNetworkConfig, type CniNetwork, type CniResult, type CniSandbox } from "./cni.ts";
export { NodeRuntimeError } from "./errors.ts";
export { nodeNetwork, removeNodeRuntimeSandboxes, writeNodeNetwork, runNodeRuntime, type NodeRuntime, type NodeRuntimeOptions } from "./node-runtime.ts";
export { POD_SERVER_PROTOCOLS, parsePodServerPorts, type PodServerPort } from "./pod-server.ts";
export { sctpRawBinary } from "./sctp-raw.ts";
export {
  createSandbox,
  destroySandbox,
  listSandboxes,
  restartSandboxServer,
  sandboxDamage,
  sandboxServerRunning,
  type SandboxRecord,
  type SandboxStore,
} from "./sandbox.ts";
