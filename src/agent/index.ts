/**
 * The node agent: enforces policy for one node's pods from the Kubernetes
 * API, serves health and metrics, logs denied flows and reports what it
 * enforces. `Agent` wires the parts; the reconcile loop (`ReconcileLoop`,
 * `Reconciler`) takes the cluster and the datapath through seams
 * (`WatchedObjects`, `AgentDatapath`) so it runs in unit tests.
 *
 * @module
 */
export * from "./agent.ts";
export * from "./agent-datapath.ts";
export * from "./cluster-watch.ts";
export * from "./conntrack-gc.ts";
export * from "./enforcement-report.ts";
export * from "./flow-log.ts";
export * from "./main.ts";
export * from "./metrics.ts";
export * from "./pod-attachments.ts";
export * from "./pod-interface.ts";
export * from "./reconcile-loop.ts";
export * from "./reconciler.ts";
