/**
 * What the informers of the agent and the operator keep of each object the
 * policy layer reads (client-go's `SetTransform`): the fields that
 * {@linkcode namespaceFromObject}, {@linkcode podFromObject},
 * {@linkcode policyFromObject} and {@linkcode isolationOfRefused} validate
 * and read, and the identity fields the caches and reports use (uid,
 * resourceVersion, generation, creationTimestamp); of a PalisadeIdentity,
 * what an agent reads: its number and key. Everything else, such as
 * annotations (`kubectl apply` keeps a whole copy of the object in one),
 * owner references, a pod's images, volumes, environment, probes and
 * container statuses, a policy's status, is dropped as the object arrives,
 * before it is cached.
 *
 * Each kept field is copied as it came, whatever its type, so a malformed
 * object fails validation exactly as it would whole; only the parts of an
 * object that are records (and of a list, its items that are records) are
 * narrowed. A policy's spec is kept whole: its validation refuses some
 * unknown fields, and it is small beside a pod.
 *
 * @module
 */

/**
 * Which fields of a value to keep: `true` keeps the value whole; an object
 * keeps those fields of a record (each narrowed by its own shape); a
 * one-element list narrows each item of a list by that shape. A value that
 * is not what the shape expects (a string where a record was expected) is
 * kept whole, so that validation sees it.
 */
type Shape = true | { readonly [field: string]: Shape } | readonly [Shape];

const METADATA = { name: true, namespace: true, uid: true, resourceVersion: true, generation: true, creationTimestamp: true, labels: true } as const;

/** A Namespace: its name and labels (namespaceFromObject). */
const NAMESPACE: Shape = { apiVersion: true, kind: true, metadata: METADATA };

/**
 * A Pod: labels, node, host network, named container ports, phase and
 * addresses (podFromObject), and creationTimestamp (which of two pods
 * claiming an address keeps it).
 */
const POD: Shape = {
  apiVersion: true,
  kind: true,
  metadata: METADATA,
  spec: { nodeName: true, hostNetwork: true, containers: [{ name: true, ports: true }] },
  status: { phase: true, podIP: true, podIPs: true },
};

/**
 * A Pod's metadata as the agent's pod cache keeps it beside the pod converted (`cachedPod`): what it reads of the
 * object itself (name, namespace; resourceVersion, which a relist compares; creationTimestamp, which of two pods
 * claiming an address keeps it), not the uid, and not the labels, which the conversion holds. Four fields fit in
 * the object itself (a fifth costs a 40-byte property array).
 */
const CACHED_POD_METADATA: Shape = { name: true, namespace: true, resourceVersion: true, creationTimestamp: true };

/** A NetworkPolicy or EBPFNetworkPolicy: metadata as the policy layer keeps it, and the whole spec. */
const POLICY: Shape = { apiVersion: true, kind: true, metadata: METADATA, spec: true };

/**
 * A PalisadeIdentity as an agent reads it: its number (the name) and key
 * (`identityKeyIndex`, `ClusterIdentityAllocator`); the key's readable parts
 * beside it in the spec, and the operator's managedFields, are not read.
 */
const IDENTITY: Shape = { apiVersion: true, kind: true, metadata: { name: true, uid: true, resourceVersion: true }, spec: { key: true } };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function keep(value: unknown, shape: Shape): unknown {
  if (shape === true) return value;
  if (Array.isArray(shape)) {
    const [itemShape] = shape as readonly [Shape];
    return Array.isArray(value) ? value.map((item: unknown) => keep(item, itemShape)) : value;
  }
  if (!isRecord(value)) return value;
  const kept: Record<string, unknown> = {};
  for (const [field, fieldShape] of Object.entries(shape as { readonly [field: string]: Shape })) {
    if (Object.hasOwn(value, field)) kept[field] = keep(value[field], fieldShape);
  }
  return kept;
}

/**
 * The fields of a Namespace the policy layer reads, as an informer's `transform`.
 *
 * @example
 * ```ts
 * namespaceFields({ apiVersion: "v1", kind: "Namespace", metadata: { name: "x", labels: { env: "prod" }, annotations: { a: "b" } }, status: { phase: "Active" } });
 * // { apiVersion: "v1", kind: "Namespace", metadata: { name: "x", labels: { env: "prod" } } }
 * ```
 */
export function namespaceFields<T extends object>(namespace: T): T {
  return keep(namespace, NAMESPACE) as T;
}

/**
 * The fields of a Pod the policy layer reads, as an informer's `transform`.
 *
 * @example
 * ```ts
 * const informer = new Informer<V1Pod>({ client, resource: Resources.pods, transform: podFields });
 * ```
 */
export function podFields<T extends object>(pod: T): T {
  return keep(pod, POD) as T;
}

/**
 * The fields of a Pod's metadata the agent's pod cache keeps beside the pod converted ({@linkcode cachedPod}).
 *
 * @example
 * ```ts
 * cachedPodMetadata({ name: "a", namespace: "x", uid: "u", labels: { app: "web" }, resourceVersion: "7" });
 * // { name: "a", namespace: "x", resourceVersion: "7" }
 * ```
 */
export function cachedPodMetadata<T>(metadata: T): T {
  return keep(metadata, CACHED_POD_METADATA) as T;
}

/**
 * The fields of a NetworkPolicy or EBPFNetworkPolicy the policy layer reads,
 * as an informer's `transform`: the whole spec, no status, no annotations.
 * The operator's form; the agent caches a policy converted instead
 * ({@linkcode cachedPolicy}).
 *
 * @example
 * ```ts
 * const informer = new Informer({ client, resource: Resources.networkPolicies, transform: policyFields });
 * ```
 */
export function policyFields<T extends object>(policy: T): T {
  return keep(policy, POLICY) as T;
}

/**
 * The fields of a PalisadeIdentity an agent reads, as an informer's
 * `transform`: its name (the number) and `spec.key`. Not for the operator,
 * which reads the rest of the spec.
 *
 * @example
 * ```ts
 * const informer = identityInformer(client, logger, identityFields);
 * ```
 */
export function identityFields<T extends object>(identity: T): T {
  return keep(identity, IDENTITY) as T;
}
