/**
 * CPU time used by processes that are not this benchmark: on a shared
 * machine another program's burst can halve a connection-rate window, and
 * such a window measures that program, not the network path. The estimate
 * sums user and system time (including reaped children's) of every process
 * outside this process's tree, kernel threads excepted, from /proc.
 *
 * @module
 */
import { readFileSync, readdirSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;
const KTHREADD_PID = 2;

interface ProcessTimes {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
}

function readProcesses(): Map<number, ProcessTimes> {
  const processes = new Map<number, ProcessTimes>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we listed /proc
    }
    // The command name may contain spaces and parentheses: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const number = (field: number) => Number(fields[field - 3]);
    processes.set(Number(entry), { ppid: number(4), ticks: number(14) + number(15) + number(16) + number(17) });
  }
  return processes;
}

/** Whether `pid` descends from `ancestor` (or is it). */
function descendsFrom(pid: number, ancestor: number, processes: Map<number, ProcessTimes>): boolean {
  for (let current = pid, hops = 0; current > 0 && hops < 64; hops++) {
    if (current === ancestor) return true;
    current = processes.get(current)?.ppid ?? 0;
  }
  return false;
}

/**
 * Total CPU seconds consumed so far by processes outside this process's
 * tree; the difference of two readings is what others used in between
 * (an overestimate when a process exits in between and its earlier time
 * moves to its parent's children total).
 *
 * @example
 * ```ts
 * const before = foreignCpuSeconds();
 * await measure();
 * if (foreignCpuSeconds() - before > 0.1 * seconds) console.error("disturbed");
 * ```
 */
export function foreignCpuSeconds(): number {
  const processes = readProcesses();
  let ticks = 0;
  for (const [pid, times] of processes) {
    if (pid === KTHREADD_PID || times.ppid === KTHREADD_PID || descendsFrom(pid, process.pid, processes)) continue;
    // Our ancestors' children totals include us once we are reaped: not yet, so they count as they are.
    ticks += times.ticks;
  }
  return ticks / TICKS_PER_SECOND;
}
