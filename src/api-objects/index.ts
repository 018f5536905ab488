/**
 * Kubernetes API objects as the policy layer takes them, for both the agent
 * and the operator (each runs a policy compiler over the cluster's objects):
 * Namespaces, Pods and both policy kinds converted through the policy
 * layer's own validation, and the informer over the cluster's identity
 * table. It sits beside datapath/ and probe/, above policy/ and k8s/, which
 * it joins.
 *
 * @module
 */
export * from "./cached-fields.ts";
export * from "./cached-pod.ts";
export * from "./cached-policy.ts";
export * from "./convert.ts";
export * from "./identity-informer.ts";
export * from "./refused-policy.ts";
