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

/**
 * The PEM certificate blocks of `text`, each with its armour, in order; text
 * around them is ignored, as OpenSSL does.
 *
 * @example
 * ```ts
 * pemCertificateBlocks(caBundle).length; // 2
 * ```
 */
export function pemCertificateBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----\r?\n[^-]*-----END CERTIFICATE-----/g) ?? [];
}

/** One reference of a policy's rule to material: the source, the ConfigMap key (CA bundles), and the field naming it. */
export interface TlsMaterialReference {
  source: TlsMaterialSource;
  /** The key of a ConfigMap source; undefined for a Secret (its `tls.crt` and `tls.key`). */
  key?: string;
  /** The field, e.g. `spec.ingress[0].tls.termination.certificate.secretName`. */
  field: string;
}

/** A `{configMapName, key}` reference as a rule writes it. */
interface ConfigMapKeyRef {
  configMapName?: unknown;
  key?: unknown;
}

/** What this module reads of a rule's `tls`; the rest of the rule is the validator's. */
interface TlsReferences {
  termination?: { certificate?: { secretName?: unknown }; upstreamCA?: ConfigMapKeyRef };
  clientCertificate?: { ca?: ConfigMapKeyRef };
}

/**
 * The material an EBPFNetworkPolicy's rules reference, in rule order; a
 * reference that is not a string (the validator reports it) is skipped.
 *
 * @example
 * ```ts
 * tlsMaterialReferences({ metadata: { namespace: "shop" }, spec: { ingress: [{ tls: { termination: { certificate: { secretName: "api-tls" } } } }] } });
 * // [{ source: { kind: "Secret", namespace: "shop", name: "api-tls" }, field: "spec.ingress[0].tls.termination.certificate.secretName" }]
 * ```
 */
export function tlsMaterialReferences(policy: { metadata: { namespace?: string }; spec?: { ingress?: unknown; egress?: unknown } }): TlsMaterialReference[] {
  const namespace = policy.metadata.namespace ?? "";
  const references: TlsMaterialReference[] = [];
  const configMapKey = (ref: ConfigMapKeyRef | undefined, field: string): void => {
    if (typeof ref?.configMapName !== "string" || typeof ref.key !== "string") return;
    references.push({ source: { kind: "ConfigMap", namespace, name: ref.configMapName }, key: ref.key, field: `${field}.configMapName` });
  };
  for (const direction of ["ingress", "egress"] as const) {
    const rules = policy.spec?.[direction];
    if (!Array.isArray(rules)) continue;
    rules.forEach((rule: { tls?: TlsReferences } | null, i) => {
      const tls = rule?.tls;
      if (typeof tls !== "object" || tls === null) return;
      const at = `spec.${direction}[${i}].tls`;
      const secretName = tls.termination?.certificate?.secretName;
      if (typeof secretName === "string") {
        references.push({ source: { kind: "Secret", namespace, name: secretName }, field: `${at}.termination.certificate.secretName` });
      }
      configMapKey(tls.termination?.upstreamCA, `${at}.termination.upstreamCA`);
      configMapKey(tls.clientCertificate?.ca, `${at}.clientCertificate.ca`);
    });
  }
  return references;
}
