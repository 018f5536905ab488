/**
 * The certificates and kubeconfigs of the control plane components and the
 * admin, and kubeconfigs for further users (the operator, the agents).
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeKubeconfig } from "./kubeconfig.ts";
import type { DevLayout } from "./layout.ts";
import { DevPki, type CertificateFiles, type ClientCredentials } from "./pki.ts";
import type { DevPorts } from "./ports.ts";

/** The first address of each service CIDR: the `kubernetes` Service's cluster IPs. */
export const KUBERNETES_SERVICE_IPS = ["10.96.0.1", "fd00:10:96::1"];

const LOOPBACK: { dnsNames: string[]; ips: string[] } = { dnsNames: ["localhost"], ips: ["127.0.0.1", "::1"] };

/** Everything the control plane processes authenticate with. */
export interface ControlPlaneCredentials {
  pki: DevPki;
  etcdServer: CertificateFiles;
  /** kube-apiserver's client certificate towards etcd. */
  etcdClient: CertificateFiles;
  apiserver: CertificateFiles;
  controllerManagerServing: CertificateFiles;
  schedulerServing: CertificateFiles;
  admin: ClientCredentials;
  controllerManager: ClientCredentials;
  scheduler: ClientCredentials;
  adminKubeconfig: string;
  controllerManagerKubeconfig: string;
  schedulerKubeconfig: string;
}

/** Where a dev cluster's API server listens: the address recorded in its state, and its port. */
export interface ApiserverEndpoint {
  apiserverAddress: string;
  ports: DevPorts;
}

/**
 * The API server URL of a dev cluster.
 *
 * @example
 * ```ts
 * apiserverUrl({ apiserverAddress: "10.240.0.254", ports }); // "https://10.240.0.254:6443"
 * ```
 */
export function apiserverUrl(endpoint: ApiserverEndpoint): string {
  const { apiserverAddress: address, ports } = endpoint;
  return `https://${address.includes(":") ? `[${address}]` : address}:${ports.apiserver}`;
}

/** A kubeconfig file and the client certificate in it. */
export interface IssuedKubeconfig {
  path: string;
  client: ClientCredentials;
}

/**
 * A client certificate for `user` in `groups` and a kubeconfig using it,
 * written to `<dev dir>/kubeconfigs/<file>.kubeconfig`.
 *
 * @example
 * ```ts
 * const { path } = issueKubeconfig(layout, pki, state, "palisade-agent-1", "system:node:palisade-node-1", ["system:nodes"]);
 * ```
 */
export function issueKubeconfig(layout: DevLayout, pki: DevPki, endpoint: ApiserverEndpoint, file: string, user: string, groups: string[]): IssuedKubeconfig {
  return kubeconfigFor(layout, pki, endpoint, file, user, groups, true);
}

function kubeconfigFor(layout: DevLayout, pki: DevPki, endpoint: ApiserverEndpoint, file: string, user: string, groups: string[], write: boolean): IssuedKubeconfig {
  const client = pki.issueClientCert(user, groups);
  const path = join(layout.kubeconfigs, `${file}.kubeconfig`);
  if (write) {
    mkdirSync(layout.kubeconfigs, { recursive: true, mode: 0o700 });
    writeKubeconfig(path, { server: apiserverUrl(endpoint), caCertFile: pki.caCertFile, client, userName: user });
  }
  return { path, client };
}

/**
 * Issues (or reuses) every control plane certificate and writes the
 * kubeconfigs: the admin's (group system:masters) at `layout.adminKubeconfig`,
 * the controller-manager's and scheduler's under `layout.kubeconfigs`.
 *
 * @example
 * ```ts
 * const credentials = ensureControlPlaneCredentials(layout, { apiserverAddress: "10.240.0.254", ports });
 * ```
 */
export function ensureControlPlaneCredentials(layout: DevLayout, endpoint: ApiserverEndpoint): ControlPlaneCredentials {
  return controlPlaneCredentials(layout, endpoint, DevPki.ensure(layout.pki), true);
}

/**
 * The files {@link ensureControlPlaneCredentials} made, named without
 * checking or writing anything.
 */
export function existingControlPlaneCredentials(layout: DevLayout, endpoint: ApiserverEndpoint): ControlPlaneCredentials {
  return controlPlaneCredentials(layout, endpoint, DevPki.existing(layout.pki), false);
}

function controlPlaneCredentials(layout: DevLayout, endpoint: ApiserverEndpoint, pki: DevPki, write: boolean): ControlPlaneCredentials {
  const admin = pki.issueClientCert("palisade-dev-admin", ["system:masters"]);
  if (write) writeKubeconfig(layout.adminKubeconfig, { server: apiserverUrl(endpoint), caCertFile: pki.caCertFile, client: admin, userName: admin.user });
  const controllerManager = kubeconfigFor(layout, pki, endpoint, "kube-controller-manager", "system:kube-controller-manager", [], write);
  const scheduler = kubeconfigFor(layout, pki, endpoint, "kube-scheduler", "system:kube-scheduler", [], write);
  return {
    pki,
    etcdServer: pki.issueServingCert("etcd-server", { ...LOOPBACK, clientAuth: true }),
    etcdClient: pki.issueClientCert("kube-apiserver-etcd-client"),
    apiserver: pki.issueServingCert("kube-apiserver", {
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
      // The listening address too: node namespaces dial it.
      ips: [...new Set([...LOOPBACK.ips, endpoint.apiserverAddress, ...KUBERNETES_SERVICE_IPS])],
    }),
    controllerManagerServing: pki.issueServingCert("kube-controller-manager", LOOPBACK),
    schedulerServing: pki.issueServingCert("kube-scheduler", LOOPBACK),
    admin,
    controllerManager: controllerManager.client,
    scheduler: scheduler.client,
    adminKubeconfig: layout.adminKubeconfig,
    controllerManagerKubeconfig: controllerManager.path,
    schedulerKubeconfig: scheduler.path,
  };
}
