/**
 * Writes what the operator will write for TLS termination, until it does:
 * the copy of a Secret or ConfigMap in namespace palisade-secrets, named,
 * labelled and annotated as policy/tls-material.ts says. The one place tests
 * write copies themselves: once the operator copies, its callers switch to
 * creating the source objects only.
 *
 * @module
 */
import { TLS_MATERIAL_LABEL, TLS_MATERIAL_NAMESPACE, TLS_MATERIAL_SOURCE_ANNOTATION, formatTlsMaterialSource, tlsMaterialName } from "../../src/policy/tls-material.ts";
import type { TlsMaterialSource } from "../../src/policy/tls-material.ts";
import type { DevCli } from "./dev-cli.ts";

/** Creates the source object (a `kubernetes.io/tls` Secret, or a ConfigMap) and writes its copy, replacing both when they exist. */
export function writeTlsMaterial(cluster: DevCli, source: TlsMaterialSource, data: Record<string, Buffer>): void {
  if (cluster.kubectl("get", "namespace", TLS_MATERIAL_NAMESPACE).status !== 0) cluster.kube("create", "namespace", TLS_MATERIAL_NAMESPACE);
  const base64 = Object.fromEntries(Object.entries(data).map(([key, value]) => [key, value.toString("base64")]));
  const metadata = { name: source.name, namespace: source.namespace };
  cluster.apply(source.kind === "Secret"
    ? { apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata, data: base64 }
    : { apiVersion: "v1", kind: "ConfigMap", metadata, data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, value.toString("utf8")])) });
  cluster.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: tlsMaterialName(source),
      namespace: TLS_MATERIAL_NAMESPACE,
      labels: { [TLS_MATERIAL_LABEL]: "true" },
      annotations: { [TLS_MATERIAL_SOURCE_ANNOTATION]: formatTlsMaterialSource(source) },
    },
    data: base64,
  });
}
