/**
 * What suites that bring up a dev cluster with nodes share: a temporary dev
 * folder with its own pin root and free ports, given to `palisade dev` by
 * the environment variables it reads, and a liveness check of the processes
 * it starts.
 *
 * @module
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PORT_SETTINGS } from "../../src/devcluster/index.ts";

/** A dev cluster's place: a temporary folder, its dev folder inside, a pin root, and the environment naming them. */
export interface TemporaryDevCluster {
  /** The temporary folder; remove it afterwards. */
  base: string;
  /** `PALISADE_DEV_DIR`, inside `base`. */
  dir: string;
  /** A short random name part for namespaces and pins, e.g. `pl-e2e-3f9a1c`. */
  tag: string;
  /** `PALISADE_DEV_PIN_ROOT`, under bpffs; remove it afterwards. */
  pinBase: string;
  /** The environment for `palisade dev` and kubectl (free ports for every component). */
  env: NodeJS.ProcessEnv;
}

/**
 * A new place for a dev cluster; `purpose` names the folder and the tag (`pl-<purpose>-…`).
 *
 * @example
 * ```ts
 * const { env, base, pinBase } = temporaryDevCluster("e2e");
 * spawnSync(process.execPath, [cli, "dev", "up", "--nodes", "2"], { env });
 * ```
 */
export function temporaryDevCluster(purpose: string): TemporaryDevCluster {
  const base = mkdtempSync(join(tmpdir(), `pl-${purpose}-`));
  const dir = join(base, "dev");
  const tag = `pl-${purpose}-${Math.random().toString(16).slice(2, 8)}`;
  const pinBase = `/sys/fs/bpf/${tag}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PALISADE_DEV_DIR: dir,
    PALISADE_DEV_PIN_ROOT: pinBase,
    ...Object.fromEntries(Object.values(PORT_SETTINGS).map((setting) => [setting.env, "0"])),
  };
  return { base, dir, tag, pinBase, env };
}

/** Whether process `pid` runs: a zombie (nobody reaps the detached processes here) still answers kill(0) but has no executable. */
export function alive(pid: number): boolean {
  try {
    return existsSync(`/proc/${pid}/exe`) && readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}
