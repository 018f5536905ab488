/**
 * The settings a dev cluster was brought up with, recorded in its folder so
 * that later commands (`up` again, `status`, `down`) use the same ports and
 * binaries whatever the environment says then.
 *
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { DevClusterError } from "./errors.ts";
import type { DevLayout } from "./layout.ts";
import type { DevPorts } from "./ports.ts";

/** Where a control plane without nodes listens. */
export const LOOPBACK_ADDRESS = "127.0.0.1";

/** What `cluster.json` holds. */
export interface ClusterState {
  ports: DevPorts;
  /**
   * The address the API server listens on and every kubeconfig names: the
   * cluster bridge's for a cluster with nodes (reachable from the node
   * namespaces, local on the host), loopback for a control plane alone.
   */
  apiserverAddress: string;
  /** The folder of the control plane binaries the processes run. */
  binariesDir: string;
  /** The network slot of a cluster with nodes (see dev-network.ts); undefined for a control plane alone. */
  networkSlot?: number;
  /** kube-apiserver flags beyond the dev cluster's own, by name without dashes (a test's `watch-cache-sizes`, say). */
  apiserverFlags?: Record<string, string>;
}

/**
 * The recorded state, or undefined when the folder has none (no cluster).
 *
 * @example
 * ```ts
 * const state = readClusterState(devLayout("/var/lib/palisade/dev"));
 * ```
 */
export function readClusterState(layout: DevLayout): ClusterState | undefined {
  if (!existsSync(layout.stateFile)) return undefined;
  try {
    const state = JSON.parse(readFileSync(layout.stateFile, "utf8")) as Partial<ClusterState>;
    if (typeof state.ports?.apiserver !== "number" || typeof state.binariesDir !== "string") throw new Error("missing ports or binariesDir");
    // Clusters recorded before slots existed had nodes exactly when they listened on slot 0's bridge.
    const networkSlot = state.networkSlot ?? (state.apiserverAddress === "10.240.0.254" ? 0 : undefined);
    if (networkSlot !== undefined && !Number.isInteger(networkSlot)) throw new Error(`networkSlot ${JSON.stringify(networkSlot)} is not a number`);
    return {
      ports: state.ports,
      binariesDir: state.binariesDir,
      apiserverAddress: state.apiserverAddress ?? LOOPBACK_ADDRESS,
      ...(networkSlot !== undefined && { networkSlot }),
      ...(state.apiserverFlags !== undefined && { apiserverFlags: state.apiserverFlags }),
    };
  } catch (cause) {
    throw new DevClusterError(`Cannot read dev cluster state "${layout.stateFile}": ${(cause as Error).message}`, { cause });
  }
}

/** Records `state` in the dev folder. */
export function writeClusterState(layout: DevLayout, state: ClusterState): void {
  writeFileSync(layout.stateFile, `${JSON.stringify(state, null, 2)}\n`);
}
