/**
 * Keeps other programs' CPU bursts out of the connection-rate numbers: waits
 * (within a budget for the whole benchmark) until the machine is quiet before
 * a run, and judges afterwards whether the run was disturbed, so the caller
 * can repeat it. See foreign-cpu.ts for how "others" are counted.
 *
 * @module
 */
import { foreignCpuSeconds } from "./foreign-cpu.ts";

const PROBE_MS = 1000;

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
      const before = foreignCpuSeconds();
      await new Promise((resolve) => setTimeout(resolve, PROBE_MS));
      this.#waitedMs += PROBE_MS;
      if ((foreignCpuSeconds() - before) / (PROBE_MS / 1000) <= this.maxForeignShare) return;
    }
  }

  /** Runs `work` and returns its result with the share of a core others used meanwhile. */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; foreignShare: number }> {
    const before = foreignCpuSeconds();
    const started = performance.now();
    const result = await work();
    const seconds = (performance.now() - started) / 1000;
    return { result, foreignShare: (foreignCpuSeconds() - before) / seconds };
  }
}
