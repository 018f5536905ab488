/**
 * Undo actions for everything a benchmark creates in the kernel (network
 * namespaces, veths, iptables chains, nftables tables, bpffs pins). They run
 * in reverse order of registration when the benchmark finishes, fails, or is
 * interrupted by SIGINT, SIGTERM or SIGHUP, so a run never leaves state behind.
 *
 * @module
 */

/** A stack of undo actions, run once in reverse order. */
export class CleanupStack {
  private readonly actions: { what: string; undo: () => void }[] = [];
  private readonly onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${signal}: removing what the benchmark created\n`);
    this.runAll();
    process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGHUP" ? 1 : 15));
  };

  constructor() {
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, this.onSignal);
  }

  /**
   * Registers `undo` (synchronous, so it can run from a signal handler) and
   * returns a function that runs it now and unregisters it.
   *
   * @example
   * ```ts
   * const removeChain = cleanup.add("iptables chain PLB-1", () => run("iptables", ["-X", "PLB-1"]));
   * removeChain(); // when the measurement is done
   * ```
   */
  add(what: string, undo: () => void): () => void {
    const entry = { what, undo };
    this.actions.push(entry);
    return () => {
      const index = this.actions.indexOf(entry);
      if (index < 0) return;
      this.actions.splice(index, 1);
      entry.undo();
    };
  }

  /** Runs every registered action, newest first; a failing action is reported and the rest still run. */
  runAll(): void {
    while (this.actions.length > 0) {
      const { what, undo } = this.actions.pop()!;
      try {
        undo();
      } catch (error) {
        process.stderr.write(`bench: cannot remove ${what}: ${(error as Error).message}\n`);
      }
    }
  }

  /** Runs every action and stops listening for signals. */
  dispose(): void {
    this.runAll();
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.off(signal, this.onSignal);
  }
}
