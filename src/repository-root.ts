/**
 * Where the repository (or installed package) lives, for the files it ships
 * next to the code: BPF objects, the native addon, scripts, manifests.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * The nearest folder above `from` holding package.json.
 *
 * @example
 * ```ts
 * const object = join(repositoryRoot(), "bpf", "out", "endpoint.bpf.o");
 * ```
 */
export function repositoryRoot(from: string = import.meta.dirname): string {
  let dir = from;
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`Cannot find the repository root: no package.json in "${from}" or above`);
    dir = parent;
  }
  return dir;
}
