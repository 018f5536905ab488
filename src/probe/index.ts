/**
 * Probing and waiting, below the CLI and beside the conformance runner that
 * both use it: real probes sent from pods' network namespaces by long-lived
 * probers, the pods' addresses and namespaces, and the wait until a
 * cluster enforces what its API server holds.
 *
 * @module
 */
export * from "./pod-network.ts";
export * from "./probe-pods.ts";
export * from "./prober-pool.ts";
export type { ProberRequest, ProberResponse } from "./prober.ts";
export * from "./send-probe.ts";
export * from "./wait-programmed.ts";
