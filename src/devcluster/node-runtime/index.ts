/**
 * The dev cluster's stand-in node runtime: Pods bound to a dev node become
 * network namespaces wired by the real CNI plugins, with a small echo
 * server on every declared TCP/UDP container port.
 *
 * @module
 */
export { CNI_PATH, POD_INTERFACE, cniAdd, cniConfig, cniDel, type CniNetwork, type CniResult, type CniSandbox } from "./cni.ts";
export { NodeRuntimeError } from "./errors.ts";
export { nodeNetwork, removeNodeRuntimeSandboxes, runNodeRuntime, type NodeRuntime, type NodeRuntimeOptions } from "./node-runtime.ts";
export { POD_SERVER_PROTOCOLS, parsePodServerPorts, type PodServerPort } from "./pod-server.ts";
export { createSandbox, destroySandbox, listSandboxes, sandboxName, sandboxServerRunning, type SandboxRecord, type SandboxStore } from "./sandbox.ts";
