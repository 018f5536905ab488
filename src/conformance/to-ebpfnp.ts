/**
 * NetworkPolicy → the equivalent EBPFNetworkPolicy. EBPFNetworkPolicy is a
 * superset with the same peers, ports and policyTypes defaulting; only the
 * selector's field name differs (`spec.selector` for `spec.podSelector`),
 * every rule keeps the default action Allow and the mode stays Enforce.
 *
 * @module
 */
import type { AnyPolicy, EBPFNetworkPolicy, NetworkPolicy } from "../policy/index.ts";

/**
 * The EBPFNetworkPolicy that allows and isolates exactly what `policy` does.
 *
 * @example
 * ```ts
 * toEbpfNetworkPolicy({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "deny", namespace: "x" }, spec: { podSelector: {} } });
 * // { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name: "deny", namespace: "x" }, spec: { selector: {} } }
 * ```
 */
export function toEbpfNetworkPolicy(policy: NetworkPolicy): EBPFNetworkPolicy {
  const { podSelector, policyTypes, ingress, egress } = policy.spec;
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: policy.metadata.name, ...(policy.metadata.namespace !== undefined && { namespace: policy.metadata.namespace }) },
    spec: {
      selector: podSelector,
      ...(policyTypes !== undefined && { policyTypes }),
      ...(ingress !== undefined && { ingress }),
      ...(egress !== undefined && { egress }),
    },
  };
}

/** Which policy API a run writes policies in. `both` alternates (see {@linkcode policyKindFor}). */
export type ApiMode = "networkpolicy" | "ebpfnp" | "both";

/**
 * The kind the `nameIndex`-th distinct policy name of case `caseIndex` is
 * written as. With `both`, kinds alternate between a case's policies (a
 * policy keeps its kind when a later step replaces it), and the first
 * policy's kind alternates from case to case, so single-policy cases run
 * on both APIs across the suite.
 */
export function policyKindFor(api: ApiMode, caseIndex: number, nameIndex: number): AnyPolicy["kind"] {
  if (api === "networkpolicy") return "NetworkPolicy";
  if (api === "ebpfnp") return "EBPFNetworkPolicy";
  return (caseIndex + nameIndex) % 2 === 0 ? "NetworkPolicy" : "EBPFNetworkPolicy";
}

/** `policy` as `kind`. */
export function asKind(policy: NetworkPolicy, kind: AnyPolicy["kind"]): AnyPolicy {
  return kind === "NetworkPolicy" ? policy : toEbpfNetworkPolicy(policy);
}
