/**
 * The operator: validates policies beyond the CRD schema, aggregates the
 * agents' per-node reports into each EBPFNetworkPolicy's status, emits
 * Events, and serves probes and metrics. One replica leads at a time.
 *
 * @module
 */
export * from "./command.ts";
export * from "./identities.ts";
export * from "./identity-allocator.ts";
export * from "./metrics.ts";
export * from "./operator.ts";
export * from "./policy-status.ts";
