/**
 * Creates or replaces the object a TLS termination rule references: a
 * `kubernetes.io/tls` Secret or a ConfigMap. The operator copies it to
 * namespace palisade-secrets for the proxies (policy/tls-material.ts), so a
 * test waits for the traffic it expects, never for the copy.
 *
 * @module
 */
import type { TlsMaterialSource } from "../../src/policy/tls-material.ts";
import type { DevCli } from "./dev-cli.ts";

/** Applies `source` holding `data` (the Secret's keys base64-encoded, the ConfigMap's as text). */
export function applyTlsSource(cluster: DevCli, source: TlsMaterialSource, data: Record<string, Buffer>): void {
  const metadata = { name: source.name, namespace: source.namespace };
  cluster.apply(source.kind === "Secret"
    ? { apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata, data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, value.toString("base64")])) }
    : { apiVersion: "v1", kind: "ConfigMap", metadata, data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, value.toString("utf8")])) });
}
