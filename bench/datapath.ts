/**
 * `npm run bench`: the datapath benchmarks, run by hand (never as timed
 * tests). Prints the machine, then
 *  1. verdict cost per packet of pal_to_pod over policy map sizes N and
 *     identity counts K, new and established flows, against the empty program;
 *  2. real TCP connections per second between two pods with N rules in
 *     iptables (linear chain), nftables (one set lookup) and Palisade (N = 0:
 *     no policy selects either pod), against no policy at all.
 * Everything it creates in the kernel is removed, also on failure or signal.
 *
 * Usage: `node dist/bench/datapath.js [--quick] [--only verdict|connections]`
 * (as root). `--quick` runs a small grid as a smoke test.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CleanupStack } from "./lib/cleanup.ts";
import { measureConnectionRate, type RatePlan, type RateSampling } from "./lib/connection-rate.ts";
import { describeMachine, formatMachine } from "./lib/machine.ts";
import { QuietGate } from "./lib/quiet-gate.ts";
import { formatFlatnessCheck, formatRateTable, formatRunFooter, formatVerdictTable, runBenchmark } from "./lib/report.ts";
import { measureVerdictCost, type VerdictGridRow, type VerdictSampling } from "./lib/verdict-cost.ts";

/**
 * A measurement during which other programs used more than this share of one
 * core is repeated: on a 2-core machine that much foreign work visibly moves
 * both tables.
 */
const MAX_FOREIGN_SHARE = 0.1;

const K_SWEEP = [10, 1000, 65_536];
const N_SWEEP = [1, 100, 1000, 10_000, 100_000, 1_000_000];

/** Everything one benchmark run measures, and how often. */
interface BenchSettings {
  grid: readonly VerdictGridRow[];
  verdict: VerdictSampling;
  plan: RatePlan;
  rate: RateSampling;
  /** Total time the run may wait for other programs to go quiet. */
  quietWaitBudgetMs: number;
}

const FULL: BenchSettings = {
  grid: K_SWEEP.map((identities) => ({ identities, ruleCounts: N_SWEEP })),
  verdict: { rounds: 20, newFlowPerRound: 150, establishedRepeat: 100_000, attempts: 3 },
  plan: { iptables: [1, 100, 1000, 10_000], nftables: [1, 100, 10_000, 100_000], palisade: [0, 1, 100, 10_000, 100_000] },
  rate: { rounds: 4, concurrency: 8, warmupMs: 500, windowMs: 1000, windows: 3, attempts: 3 },
  quietWaitBudgetMs: 120_000,
};

const QUICK: BenchSettings = {
  grid: [
    { identities: 10, ruleCounts: [10_000] },
    { identities: 1000, ruleCounts: [1, 1000, 10_000] },
    { identities: 65_536, ruleCounts: [10_000] },
  ],
  verdict: { rounds: 4, newFlowPerRound: 50, establishedRepeat: 10_000, attempts: 2 },
  plan: { iptables: [1, 100], nftables: [1, 100], palisade: [0, 1, 100] },
  rate: { rounds: 2, concurrency: 8, warmupMs: 300, windowMs: 500, windows: 2, attempts: 2 },
  quietWaitBudgetMs: 10_000,
};

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const print = (text: string) => process.stdout.write(`${text}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, only: { type: "string" } } });
  if (values.only !== undefined && values.only !== "verdict" && values.only !== "connections") {
    throw new Error(`Cannot run the benchmark: --only "${values.only}" is neither "verdict" nor "connections"`);
  }
  if (process.getuid?.() !== 0) throw new Error("Cannot run the benchmark: it needs root (BPF, network namespaces, iptables)");
  const settings = values.quick ? QUICK : FULL;
  const started = performance.now();
  const cleanup = new CleanupStack();
  const gate = new QuietGate(MAX_FOREIGN_SHARE, settings.quietWaitBudgetMs);
  try {
    print(`# Palisade datapath benchmark${values.quick ? " (--quick)" : ""}\n`);
    print(formatMachine(describeMachine()));
    if (values.only !== "connections") {
      const { rounds, newFlowPerRound, establishedRepeat } = settings.verdict;
      print(
        `\n## Verdict cost per packet (BPF_PROG_TEST_RUN, kernel-measured)\n\n` +
          `Per K, all N and the empty program measured in ${rounds} interleaved rounds. New flow: median (and IQR) of ` +
          `${rounds * newFlowPerRound} runs with repeat 1, each a fresh source port (conntrack miss, lookups, conntrack insert); ` +
          `established: one tracked flow (conntrack hit), as many runs with repeat 1 ("1-shot", median) and ${rounds} runs ` +
          `with repeat ${establishedRepeat} (median of their averages).\n`,
      );
      const verdict = await measureVerdictCost(cleanup, settings.grid, settings.verdict, gate, log);
      print(formatVerdictTable(verdict));
      print(`\n${formatFlatnessCheck(verdict)}`);
    }
    if (values.only !== "verdict") {
      const { rounds, concurrency, warmupMs, windowMs, windows } = settings.rate;
      print(
        `\n## TCP connections per second between two pods (connect, 1-byte echo, close)\n\n` +
          `client: ${concurrency} connections in flight; per configuration and round ${warmupMs} ms warm-up, then ${windows} windows ` +
          `of ${windowMs} ms; ${rounds} interleaved rounds; median over all windows.\n`,
      );
      print(formatRateTable(await measureConnectionRate(cleanup, settings.plan, settings.rate, gate, log)));
    }
    print(`\n${formatRunFooter(gate, settings.quietWaitBudgetMs, started)}`);
  } finally {
    cleanup.dispose();
  }
}

runBenchmark(main);
