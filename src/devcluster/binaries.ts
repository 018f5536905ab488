/**
 * The control plane binaries: built once from pinned upstream Go modules by
 * scripts/build-control-plane.sh and cached per version.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { repositoryRoot } from "../repository-root.ts";
import { DevClusterError } from "./errors.ts";

/** Absolute paths of the control plane binaries. */
export interface ControlPlaneBinaries {
  /** The folder holding them all (what `PATH` gets for kubectl). */
  dir: string;
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
}

const SCRIPT = join("scripts", "build-control-plane.sh");

/**
 * The paths of the binaries in `dir`, unchecked: enough to recognise and
 * stop processes even when the cache was removed under them.
 *
 * @example
 * ```ts
 * binaryPaths("/root/.cache/palisade/bin/k8s-v1.34.4-etcd-v3.6.5").etcd;
 * ```
 */
export function binaryPaths(dir: string): ControlPlaneBinaries {
  return {
    dir,
    etcd: join(dir, "etcd"),
    kubeApiserver: join(dir, "kube-apiserver"),
    kubeControllerManager: join(dir, "kube-controller-manager"),
    kubeScheduler: join(dir, "kube-scheduler"),
    kubectl: join(dir, "kubectl"),
  };
}

/**
 * The binaries in `dir`, checked to be executable.
 *
 * @example
 * ```ts
 * binariesIn("/root/.cache/palisade/bin/k8s-v1.34.4-etcd-v3.6.5").kubectl;
 * ```
 */
export function binariesIn(dir: string): ControlPlaneBinaries {
  const binaries = binaryPaths(dir);
  for (const [field, path] of Object.entries(binaries)) {
    if (field === "dir") continue;
    try {
      accessSync(path, constants.X_OK);
    } catch (cause) {
      throw new DevClusterError(`Cannot use control plane binary "${path}": not an executable file`, { cause });
    }
  }
  return binaries;
}

/**
 * Builds the control plane binaries if the cache lacks them (minutes, cold)
 * and returns their paths. The build's progress goes to this process's
 * stderr.
 *
 * @example
 * ```ts
 * const { kubectl } = await ensureBinaries();
 * ```
 */
export async function ensureBinaries(): Promise<ControlPlaneBinaries> {
  const script = join(repositoryRoot(), SCRIPT);
  const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    stdout += chunk;
  });
  const status = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code));
  });
  if (status !== 0) throw new DevClusterError(`Cannot build the control plane binaries: ${script} exited with status ${status}`);
  const dir = stdout.trim().split("\n").at(-1) ?? "";
  if (dir === "") throw new DevClusterError(`Cannot build the control plane binaries: ${script} printed no folder`);
  return binariesIn(dir);
}
