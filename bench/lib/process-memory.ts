/**
 * Memory and start time of a dev cluster's processes, read from /proc
 * through their pid files.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { runningPid } from "../../src/devcluster/index.ts";

/**
 * Resident and peak memory of a dev process, in MB, from its pid file (NaN if it does not run).
 *
 * @example
 * ```ts
 * memoryOf(join(layout.run, "operator.pid")); // { rss: 144.2, peak: 198.0 }
 * ```
 */
export function memoryOf(pidFile: string): { rss: number; peak: number } {
  const pid = runningPid(pidFile, process.execPath);
  if (pid === undefined) return { rss: NaN, peak: NaN };
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m"))?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/**
 * When process `pid` started, in ms since the epoch (10 ms resolution: the kernel counts clock ticks).
 *
 * @example
 * ```ts
 * Date.now() - startedAt(pid); // how long it has run
 * ```
 */
export function startedAt(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command (which may hold spaces) start at field 3; starttime is field 22.
  const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  const bootSeconds = Number(readFileSync("/proc/stat", "utf8").match(/^btime (\d+)$/m)?.[1]);
  return bootSeconds * 1000 + ticks * 10;
}
