/**
 * Where the node proxies find the certificates, keys and CA bundles that TLS
 * termination rules reference (issue 12). A rule names a Secret or ConfigMap
 * of its policy's namespace; the operator copies each referenced object that
 * checks out into one namespace, {@linkcode TLS_MATERIAL_NAMESPACE}, as a
 * Secret named by {@linkcode tlsMaterialName}. The node agents and proxies
 * may read Secrets of that namespace only, so a node never holds read access
 * to the Secrets of the cluster's other namespaces; only the operator does.
 *
 * A copy holds the source's `data` (a Secret's `tls.crt` and `tls.key`, a
 * ConfigMap's keys as they are). A reference whose object is missing or
 * malformed has no copy: the proxy then refuses the connections that rule
 * would terminate, and the operator reports the policy not accepted.
 *
 * @module
 */

/** The namespace of the copies: the only one whose Secrets the node agents and proxies may read. */
export const TLS_MATERIAL_NAMESPACE = "palisade-secrets";

/** The kinds of object a rule may reference. */
export type TlsMaterialKind = "Secret" | "ConfigMap";

/** An object a rule references, in its policy's namespace. */
export interface TlsMaterialSource {
  kind: TlsMaterialKind;
  namespace: string;
  name: string;
}

/** The annotation of a copy naming its source, as {@linkcode formatTlsMaterialSource} writes it. */
export const TLS_MATERIAL_SOURCE_ANNOTATION = "palisade.dev/source";

/** The label every copy carries, so the operator can list (and collect) its copies. */
export const TLS_MATERIAL_LABEL = "palisade.dev/tls-material";

/** A Secret's name at most (a DNS subdomain). */
const MAX_NAME = 253;

/**
 * The name of `source`'s copy in {@linkcode TLS_MATERIAL_NAMESPACE}: the kind,
 * the namespace and the name joined by dots. Namespace names hold no dot, so
 * no two sources share a name. Undefined when that name would be longer than
 * a Secret's name may be (a source name over about 170 characters): such a
 * reference is refused.
 *
 * @example
 * ```ts
 * tlsMaterialName({ kind: "Secret", namespace: "shop", name: "api-tls" }); // "secret.shop.api-tls"
 * tlsMaterialName({ kind: "ConfigMap", namespace: "shop", name: "shop-ca" }); // "configmap.shop.shop-ca"
 * ```
 */
export function tlsMaterialName(source: TlsMaterialSource): string | undefined {
  const name = `${source.kind.toLowerCase()}.${source.namespace}.${source.name}`;
  return name.length <= MAX_NAME ? name : undefined;
}

/**
 * How messages and the source annotation name a source.
 *
 * @example
 * ```ts
 * formatTlsMaterialSource({ kind: "Secret", namespace: "shop", name: "api-tls" }); // "Secret shop/api-tls"
 * ```
 */
export function formatTlsMaterialSource(source: TlsMaterialSource): string {
  return `${source.kind} ${source.namespace}/${source.name}`;
}
