/**
 * `npm run bench`: the datapath benchmarks, run by hand (never as timed
 * tests). Prints the machine, then
 *  1. verdict cost per packet of pal_to_pod over policy map sizes N and
 *     identity counts K, new and established flows, against the empty program;
 *  2. the engines between two pods: N rules in iptables (linear chain),
 *     nftables (one set lookup) and Palisade (N = 0: no policy selects
 *     either pod), against no engine at all and the empty program on
 *     Palisade's hooks, under real workloads: the
 *     project's connect loop, wrk + nginx (a new connection per request, and
 *     keep-alive), iperf3.
 * Everything it creates in the kernel is removed, also on failure or signal.
 *
 * Usage: `node dist/bench/datapath.js [--quick] [--only verdict|engines]
 * [--workloads connect,wrk-close,wrk-keepalive,iperf3] [--engines
 * tcx-empty,iptables,nftables,palisade] [--rules 0,1,10000] [--rounds R] [--seed S]
 * [--program-stats] [--json FILE]` (as root). `--quick` runs a small grid as a
 * smoke test; `--engines` and `--rules` narrow the engine comparison (N = 0
 * is Palisade's only), `--rounds` and `--seed` set its rounds and their
 * random order; `--program-stats` has the kernel account Palisade's programs'
 * run time per connection; `--json` also writes the engines' results as
 * JSON, which `bench/plot.ts` turns into the docs' plots.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CleanupStack } from "./lib/cleanup.ts";
import { ensureDebianPackages } from "./lib/debian-packages.ts";
import { measureEngines, type RatePlan, type RateSampling } from "./lib/engine-comparison.ts";
import { POD_WORKLOADS, WORKLOAD_NAMES, type WorkloadName } from "./lib/pod-workloads.ts";
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
  plan: { tcxEmpty: true, iptables: [1, 1000, 10_000, 100_000], nftables: [1, 1000, 10_000, 100_000], palisade: [0, 1, 1000, 10_000, 100_000] },
  rate: { rounds: 3, warmupMs: 1000, windowMs: 1000, windows: 3, attempts: 4, seed: 0, programStats: false },
  quietWaitBudgetMs: 300_000,
};

const QUICK: BenchSettings = {
  grid: [
    { identities: 10, ruleCounts: [10_000] },
    { identities: 1000, ruleCounts: [1, 1000, 10_000] },
    { identities: 65_536, ruleCounts: [10_000] },
  ],
  verdict: { rounds: 4, newFlowPerRound: 50, establishedRepeat: 10_000, attempts: 2 },
  plan: { tcxEmpty: true, iptables: [1, 100], nftables: [1, 100], palisade: [0, 1, 100] },
  rate: { rounds: 2, warmupMs: 1000, windowMs: 1000, windows: 1, attempts: 2, seed: 0, programStats: false },
  quietWaitBudgetMs: 10_000,
};

const ENGINES = ["tcx-empty", "iptables", "nftables", "palisade"] as const;

/** A whole number option, or an error naming it. */
function wholeNumber(option: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`Cannot run the benchmark: ${option} "${text}" is not a whole number`);
  return Number(text);
}

/**
 * The preset's plan narrowed to `engines` (comma-separated) and, if given,
 * `rules` for each of them (N = 0 for Palisade only).
 */
function narrowPlan(plan: RatePlan, engines: string, rules: string | undefined): RatePlan {
  const chosen = engines.split(",");
  for (const engine of chosen) {
    if (!(ENGINES as readonly string[]).includes(engine)) throw new Error(`Cannot run the benchmark: --engines names "${engine}", not one of ${ENGINES.join(", ")}`);
  }
  const counts = rules?.split(",").map((count) => wholeNumber("--rules", count));
  const pick = (engine: Exclude<(typeof ENGINES)[number], "tcx-empty">, preset: readonly number[]) =>
    !chosen.includes(engine) ? [] : counts === undefined ? preset : counts.filter((count) => count > 0 || engine === "palisade");
  return {
    tcxEmpty: plan.tcxEmpty && chosen.includes("tcx-empty"),
    iptables: pick("iptables", plan.iptables),
    nftables: pick("nftables", plan.nftables),
    palisade: pick("palisade", plan.palisade),
  };
}

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const print = (text: string) => process.stdout.write(`${text}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      workloads: { type: "string", default: WORKLOAD_NAMES.join(",") },
      engines: { type: "string", default: ENGINES.join(",") },
      rules: { type: "string" },
      rounds: { type: "string" },
      seed: { type: "string" },
      "program-stats": { type: "boolean", default: false },
      json: { type: "string" },
    },
  });
  if (values.only !== undefined && values.only !== "verdict" && values.only !== "engines") {
    throw new Error(`Cannot run the benchmark: --only "${values.only}" is neither "verdict" nor "engines"`);
  }
  const workloads = values.workloads.split(",").map((name) => {
    if (!(WORKLOAD_NAMES as readonly string[]).includes(name)) throw new Error(`Cannot run the benchmark: --workloads names "${name}", not one of ${WORKLOAD_NAMES.join(", ")}`);
    return POD_WORKLOADS[name as WorkloadName];
  });
  if (process.getuid?.() !== 0) throw new Error("Cannot run the benchmark: it needs root (BPF, network namespaces, iptables)");
  const preset = values.quick ? QUICK : FULL;
  const seed = values.seed === undefined ? Date.now() % 2 ** 31 : wholeNumber("--seed", values.seed);
  const settings: BenchSettings = {
    ...preset,
    plan: narrowPlan(preset.plan, values.engines, values.rules),
    rate: {
      ...preset.rate,
      seed,
      programStats: values["program-stats"],
      ...(values.rounds === undefined ? {} : { rounds: wholeNumber("--rounds", values.rounds) }),
    },
  };
  const started = performance.now();
  const cleanup = new CleanupStack();
  const gate = new QuietGate(MAX_FOREIGN_SHARE, settings.quietWaitBudgetMs);
  try {
    print(`# Palisade datapath benchmark${values.quick ? " (--quick)" : ""}\n`);
    print(formatMachine(describeMachine()));
    if (values.only !== "engines") {
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
      ensureDebianPackages(workloads.flatMap((workload) => workload.packages), log);
      const { rounds, warmupMs, windowMs, windows } = settings.rate;
      log(`engines: rows in a random order per round, seed ${seed} (--seed ${seed} repeats it)`);
      const results = await measureEngines(cleanup, settings.plan, settings.rate, gate, log, workloads);
      for (const result of results) {
        print(
          `\n## ${result.workload.title}\n\n` +
            `Per configuration and round ${warmupMs} ms warm-up, then ${windows * windowMs} ms measured; ${rounds} rounds, ` +
            `each in a random order (seed ${seed}) and each run after a baseline run; median over all runs, and of each run against the baseline run before it.\n`,
        );
        print(formatRateTable(result));
      }
      if (values.json !== undefined) {
        writeFileSync(values.json, `${JSON.stringify({ date: new Date().toISOString(), machine: describeMachine(), sampling: settings.rate, results }, null, 1)}\n`);
        log(`results written to ${values.json}`);
      }
    }
    print(`\n${formatRunFooter(gate, settings.quietWaitBudgetMs, started)}`);
  } finally {
    cleanup.dispose();
  }
}

runBenchmark(main);
