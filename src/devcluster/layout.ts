/**
 * Where a dev cluster keeps its state: one folder holding certificates,
 * kubeconfigs, etcd data, logs and pid files, so that `dev down` can remove
 * it all at once.
 *
 * @module
 */
import { join } from "node:path";

/** The dev folder used when `PALISADE_DEV_DIR` is not set. */
export const DEFAULT_DEV_DIR = "/var/lib/palisade/dev";

/** Paths inside a dev folder. */
export interface DevLayout {
  /** The dev folder itself. */
  dir: string;
  /** Certificates and keys. */
  pki: string;
  /** Kubeconfigs of the components and of users other than the admin. */
  kubeconfigs: string;
  /** The admin's kubeconfig (system:masters): what `KUBECONFIG` points at. */
  adminKubeconfig: string;
  /** etcd's data folder. */
  etcdData: string;
  /** One log file per process. */
  logs: string;
  /** One pid file per process. */
  run: string;
  /** The recorded cluster settings (ports, binaries), see `cluster-state.ts`. */
  stateFile: string;
}

/**
 * The dev folder from the environment: `PALISADE_DEV_DIR`, else
 * {@link DEFAULT_DEV_DIR}.
 *
 * @example
 * ```ts
 * const layout = devLayout(devDirFromEnv());
 * ```
 */
export function devDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.PALISADE_DEV_DIR;
  return dir !== undefined && dir !== "" ? dir : DEFAULT_DEV_DIR;
}

/**
 * The paths inside the dev folder `dir`.
 *
 * @example
 * ```ts
 * devLayout("/tmp/dev").adminKubeconfig; // "/tmp/dev/admin.kubeconfig"
 * ```
 */
export function devLayout(dir: string): DevLayout {
  return {
    dir,
    pki: join(dir, "pki"),
    kubeconfigs: join(dir, "kubeconfigs"),
    adminKubeconfig: join(dir, "admin.kubeconfig"),
    etcdData: join(dir, "etcd"),
    logs: join(dir, "logs"),
    run: join(dir, "run"),
    stateFile: join(dir, "cluster.json"),
  };
}
