/**
 * Keeps other programs' CPU bursts out of the connection-rate numbers: waits
 * (within a budget for the whole benchmark) until the machine is quiet before
 * a run, and judges afterwards whether the run was disturbed, so the caller
 * can repeat it. "Others" are the processes outside the benchmark's tree
 * (foreign-cpu.ts) and the host's other guests (steal time).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { foreignCpuSeconds } from "./foreign-cpu.ts";

const PROBE_MS = 1000;
const SETTLE_PROBE_MS = 250;
/** USER_HZ: the unit of /proc/stat. */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds the whole machine spent busy so far (/proc/stat's first line: user, nice, system, irq,
 * softirq and steal, i.e. all but idle and iowait): kernel threads, interrupts and other guests of the
 * host count too, which foreign-cpu.ts cannot see.
 */
export function machineBusySeconds(): number {
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = machineTicks();
  return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND;
}

/** /proc/stat's first line: the whole machine's CPU ticks by kind. */
function machineTicks(): number[] {
  return (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
}

/**
 * CPU seconds other programs used so far, plus the time the host gave this machine's CPUs to its other
 * guests (steal): on a shared host whole minutes can pass at a tenth of the usual speed, and a run then
 * measures the host, not the path.
 */
function othersSeconds(): number {
  return foreignCpuSeconds() + (machineTicks()[7] ?? 0) / TICKS_PER_SECOND;
}

/** A quiet-machine gate with a total waiting budget. */
export class QuietGate {
  /** Largest share of one core others may use during a run for it to count as undisturbed. */
  readonly maxForeignShare: number;
  #budgetMs: number;
  #waitedMs = 0;

  constructor(maxForeignShare: number, waitBudgetMs: number) {
    this.maxForeignShare = maxForeignShare;
    this.#budgetMs = waitBudgetMs;
  }

  /** Milliseconds spent waiting so far. */
  get waitedMs(): number {
    return this.#waitedMs;
  }

  /**
   * Waits in one-second probes until others use at most `maxForeignShare`
   * of a core, or the budget is spent (then returns at once).
   *
   * @example
   * ```ts
   * const gate = new QuietGate(0.1, 120_000);
   * await gate.waitForQuiet();
   * const share = await gate.measure(() => runClient());
   * ```
   */
  async waitForQuiet(): Promise<void> {
    while (this.#waitedMs < this.#budgetMs) {
      const before = othersSeconds();
      await new Promise((resolve) => setTimeout(resolve, PROBE_MS));
      this.#waitedMs += PROBE_MS;
      if ((othersSeconds() - before) / (PROBE_MS / 1000) <= this.maxForeignShare) return;
    }
  }

  /**
   * Waits (at most `maxMs`) until the whole machine is idle for a quarter second: between two runs nothing
   * of the benchmark's own runs, so what is busy then is the kernel finishing the previous configuration's
   * teardown (freeing maps of 100k entries, flushing rules and conntrack), or the host's other guests.
   * Without it, a row measured right after a large configuration's removal reads low.
   */
  async settle(maxMs = 5000): Promise<void> {
    const started = performance.now();
    while (performance.now() - started < maxMs) {
      const before = machineBusySeconds();
      await new Promise((resolve) => setTimeout(resolve, SETTLE_PROBE_MS));
      if ((machineBusySeconds() - before) / (SETTLE_PROBE_MS / 1000) <= this.maxForeignShare) break;
    }
    this.#waitedMs += performance.now() - started;
  }

  /** Runs `work` and returns its result with the share of a core others used meanwhile. */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; foreignShare: number }> {
    const before = othersSeconds();
    const started = performance.now();
    const result = await work();
    const seconds = (performance.now() - started) / 1000;
    return { result, foreignShare: (othersSeconds() - before) / seconds };
  }
}
