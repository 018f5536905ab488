/**
 * Names a kind of Kubernetes object on the API (group, version, plural,
 * scope) and builds the REST paths to it.
 *
 * @module
 */

/**
 * A resource as the REST API names it. `group` is `""` for the core group.
 *
 * @example
 * ```ts
 * const pods: ResourceRef = { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true };
 * ```
 */
export interface ResourceRef {
  /** API group, `""` for core (`/api/v1`). */
  readonly group: string;
  /** API version within the group, e.g. `"v1"`. */
  readonly version: string;
  /** Lower-case plural used in paths, e.g. `"pods"`. */
  readonly plural: string;
  /** Kind of the objects, e.g. `"Pod"`; used for Event references. */
  readonly kind: string;
  /** Whether objects live in a namespace. */
  readonly namespaced: boolean;
}

/** Resources the operator and agent use, ready to pass to informers and helpers. */
export const Resources = {
  pods: { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true },
  namespaces: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  nodes: { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false },
  configMaps: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  secrets: { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true },
  networkPolicies: {
    group: "networking.k8s.io", version: "v1", plural: "networkpolicies", kind: "NetworkPolicy", namespaced: true,
  },
  leases: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  events: { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
  ebpfNetworkPolicies: {
    group: "palisade.dev", version: "v1alpha1", plural: "ebpfnetworkpolicies", kind: "EBPFNetworkPolicy", namespaced: true,
  },
  palisadeIdentities: {
    group: "palisade.dev", version: "v1alpha1", plural: "palisadeidentities", kind: "PalisadeIdentity", namespaced: false,
  },
} as const satisfies Record<string, ResourceRef>;

/** The `apiVersion` field of objects of `ref`, e.g. `"v1"` or `"palisade.dev/v1alpha1"`. */
export function apiVersionOf(ref: ResourceRef): string {
  return ref.group === "" ? ref.version : `${ref.group}/${ref.version}`;
}

/**
 * The REST path of a collection or an object of `ref`. Without `namespace`
 * a namespaced resource's path spans all namespaces; a cluster-scoped
 * resource ignores `namespace`.
 *
 * @example
 * ```ts
 * resourcePath(Resources.pods, { namespace: "x", name: "a" }); // "/api/v1/namespaces/x/pods/a"
 * resourcePath(Resources.ebpfNetworkPolicies, { namespace: "x", name: "p", subresource: "status" });
 * // "/apis/palisade.dev/v1alpha1/namespaces/x/ebpfnetworkpolicies/p/status"
 * ```
 */
export function resourcePath(
  ref: ResourceRef,
  at: { namespace?: string | undefined; name?: string | undefined; subresource?: string | undefined } = {},
): string {
  let path = ref.group === "" ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  if (ref.namespaced && at.namespace !== undefined) path += `/namespaces/${encodeURIComponent(at.namespace)}`;
  path += `/${ref.plural}`;
  if (at.name !== undefined) {
    path += `/${encodeURIComponent(at.name)}`;
    if (at.subresource !== undefined) path += `/${at.subresource}`;
  }
  return path;
}

/** A readable name of `ref` for logs and messages, e.g. `"pods"` or `"ebpfnetworkpolicies.palisade.dev"`. */
export function resourceName(ref: ResourceRef): string {
  return ref.group === "" ? ref.plural : `${ref.plural}.${ref.group}`;
}
