/**
 * Kubeconfig files for the dev cluster: one cluster, one user, one context,
 * with the certificates embedded so a file works wherever it is copied.
 * Written as JSON, which kubectl, the Kubernetes binaries and every YAML
 * reader take as it is, and which the cluster's own processes read without
 * loading a YAML parser (src/k8s/kubeconfig.ts).
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { CertificateFiles } from "./pki.ts";

/** What a kubeconfig says. */
export interface KubeconfigSpec {
  /** The API server URL, e.g. `https://127.0.0.1:6443`. */
  server: string;
  /** The CA certificate file the server's certificate chains to. */
  caCertFile: string;
  /** The user's client certificate. */
  client: CertificateFiles;
  /** The user's name in the file (the identity comes from the certificate). */
  userName: string;
}

/** The name of the cluster and context in every dev kubeconfig. */
export const DEV_CONTEXT = "palisade-dev";

/**
 * The kubeconfig text for `spec`.
 *
 * @example
 * ```ts
 * const text = kubeconfigText({ server: "https://127.0.0.1:6443", caCertFile, client, userName: "admin" });
 * ```
 */
export function kubeconfigText(spec: KubeconfigSpec): string {
  const base64 = (file: string): string => readFileSync(file).toString("base64");
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: DEV_CONTEXT, cluster: { server: spec.server, "certificate-authority-data": base64(spec.caCertFile) } }],
    users: [
      {
        name: spec.userName,
        user: { "client-certificate-data": base64(spec.client.certFile), "client-key-data": base64(spec.client.keyFile) },
      },
    ],
    contexts: [{ name: DEV_CONTEXT, context: { cluster: DEV_CONTEXT, user: spec.userName } }],
    "current-context": DEV_CONTEXT,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * Writes the kubeconfig for `spec` to `path` (mode 0600: it holds a private key).
 *
 * @example
 * ```ts
 * writeKubeconfig("/var/lib/palisade/dev/admin.kubeconfig", spec);
 * ```
 */
export function writeKubeconfig(path: string, spec: KubeconfigSpec): void {
  writeFileSync(path, kubeconfigText(spec), { mode: 0o600 });
}
