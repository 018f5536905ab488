/**
 * Facts about processes that tests check: whether one runs, and when it
 * started (which tells a pid from the recycled pid of another process).
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";

/**
 * The start time of `pid` (field 22 of its stat, in clock ticks since boot), or undefined when it does not run.
 *
 * @example
 * ```ts
 * const owner = `${process.pid} ${processStartTime(process.pid)}`;
 * ```
 */
export function processStartTime(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether process `pid` runs: a zombie (nobody reaps detached processes) still answers kill(0) but has no executable.
 *
 * @example
 * ```ts
 * assert.ok(!alive(pid), `pid ${pid} still runs`);
 * ```
 */
export function alive(pid: number): boolean {
  try {
    return existsSync(`/proc/${pid}/exe`) && readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}
