/**
 * The CPU time the kernel accounts to attached BPF programs
 * (`kernel.bpf_stats_enabled`: the run time and run count of every program,
 * as `bpftool prog show` prints them), so that the engine comparison can say
 * how much of Palisade's cost per connection is its programs and how much is
 * elsewhere. The accounting itself reads the clock twice per program run
 * (some tens of ns), so it is switched on only when asked for.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import type { CleanupStack } from "./cleanup.ts";

const STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled";

/** Run time and count of one or more programs since they were loaded (or stats were switched on). */
export interface ProgramRunStats {
  runTimeNs: number;
  runCount: number;
}

/**
 * Switches the kernel's BPF run-time accounting on, and back to what it was
 * when `cleanup` runs.
 *
 * @example
 * ```ts
 * enableBpfStats(cleanup);
 * ```
 */
export function enableBpfStats(cleanup: CleanupStack): void {
  const before = readFileSync(STATS_SYSCTL, "utf8").trim();
  writeFileSync(STATS_SYSCTL, "1");
  cleanup.add(`kernel.bpf_stats_enabled back to ${before}`, () => writeFileSync(STATS_SYSCTL, before));
}

function bpftoolJson(args: readonly string[]): Record<string, unknown> {
  return JSON.parse(execFileSync("bpftool", ["--json", ...args], { encoding: "utf8" })) as Record<string, unknown>;
}

/** The ids of the programs behind pinned links, each once (one program may sit on several hooks). */
export function programIdsOfLinks(linkPins: readonly string[]): number[] {
  return [...new Set(linkPins.map((pin) => Number(bpftoolJson(["link", "show", "pinned", pin])["prog_id"])))];
}

/**
 * The summed run time and count of programs by id. Both are 0 for a program
 * run only while the accounting was off.
 */
export function programRunStats(ids: readonly number[]): ProgramRunStats {
  let runTimeNs = 0;
  let runCount = 0;
  for (const id of ids) {
    const info = bpftoolJson(["prog", "show", "id", String(id)]);
    runTimeNs += Number(info["run_time_ns"] ?? 0);
    runCount += Number(info["run_cnt"] ?? 0);
  }
  return { runTimeNs, runCount };
}
