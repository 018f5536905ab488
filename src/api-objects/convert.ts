/**
 * From API objects as the informers cache them to what the policy compiler
 * takes, through the policy layer's own validation and normalization
 * ({@linkcode buildWorld}), so the agent and the operator read objects
 * exactly as the offline tools and the reference evaluator do.
 *
 * @module
 */
import type { AnyPolicy } from "../policy/api-types.ts";
import { buildWorld } from "../policy/normalize.ts";
import type { PolicyError } from "../policy/validate.ts";
import type { NamespaceInfo, PodInfo } from "../policy/world.ts";

/** A converted object, or the problems that kept it out. */
export type Converted<T> = { ok: true; value: T } | { ok: false; errors: PolicyError[] };

/** A pod as the compiler sees it, and the node addresses it reveals when it runs on the host network. */
export interface ConvertedPod {
  pod: PodInfo;
  /** The pod's own IPs when it uses the host network (they are its node's); empty otherwise. */
  hostIPs: string[];
}

/**
 * A Namespace object as {@linkcode NamespaceInfo}, with the automatic
 * `kubernetes.io/metadata.name` label.
 *
 * @example
 * ```ts
 * namespaceFromObject({ apiVersion: "v1", kind: "Namespace", metadata: { name: "x" } });
 * // { ok: true, value: { name: "x", labels: { "kubernetes.io/metadata.name": "x" } } }
 * ```
 */
export function namespaceFromObject(obj: unknown): Converted<NamespaceInfo> {
  const { world, errors } = buildWorld([obj]);
  const [ns] = world.namespaces.values();
  if (errors.length > 0 || ns === undefined) return { ok: false, errors };
  return { ok: true, value: ns };
}

/**
 * A Pod object as {@linkcode PodInfo}: IPs from `status.podIPs` (none once
 * it finished, none of its own on the host network), named container ports.
 *
 * @example
 * ```ts
 * podFromObject(pod); // { ok: true, value: { pod: { namespace: "x", name: "a", ips: ["10.0.0.1"], … }, hostIPs: [] } }
 * ```
 */
export function podFromObject(obj: unknown): Converted<ConvertedPod> {
  const { world, errors } = buildWorld([obj]);
  const [pod] = world.pods.values();
  if (errors.length > 0 || pod === undefined) return { ok: false, errors };
  return { ok: true, value: { pod, hostIPs: world.hostIPs } };
}

/**
 * A NetworkPolicy or EBPFNetworkPolicy object, validated and reduced to the
 * fields the policy API declares (`metadata.generation` included).
 *
 * @example
 * ```ts
 * const converted = policyFromObject(obj);
 * if (!converted.ok) for (const e of converted.errors) log.error({ field: e.field }, e.message);
 * ```
 */
export function policyFromObject(obj: unknown): Converted<AnyPolicy> {
  const { world, errors } = buildWorld([obj]);
  const [policy] = world.policies;
  if (errors.length > 0 || policy === undefined) return { ok: false, errors };
  return { ok: true, value: policy };
}
