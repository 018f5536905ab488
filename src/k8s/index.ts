/**
 * The Kubernetes runtime shared by the operator and the agent: a client
 * over Node's HTTPS with kubeconfig and in-cluster credentials (the types of
 * `@kubernetes/client-node`, not its code), informers with indexed
 * caches, a rate-limited deduplicating work queue, Lease leader election,
 * status patches with conditions, an Event recorder, and the agents'
 * per-node enforcement reports.
 *
 * @module
 */
export * from "./backoff.ts";
export * from "./bounded.ts";
export * from "./cache.ts";
export * from "./client.ts";
export * from "./collect-garbage.ts";
export * from "./conditions.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./informer.ts";
export * from "./kubeconfig.ts";
export * from "./leader-election.ts";
export * from "./logger.ts";
export * from "./node-report.ts";
export * from "./probe-server.ts";
export * from "./prometheus.ts";
export * from "./resource.ts";
export * from "./status.ts";
export * from "./workqueue.ts";
