/**
 * The benchmark's tables: verdict cost per packet over the N x K grid, the
 * flatness check, and connections per second per engine, each next to the
 * baseline measured in the same run.
 *
 * @module
 */
import { loadavg } from "node:os";
import type { RateResult } from "./engine-comparison.ts";
import type { QuietGate } from "./quiet-gate.ts";
import { rowMedians, type HeldMemory, type ThroughputRow } from "./proxy-throughput.ts";
import { formatTable, growth, shortCount } from "./stats.ts";
import type { EntryFlagResult, VerdictCost, VerdictResult } from "./verdict-cost.ts";

/** Flatness goal: verdict cost may grow at most this much from N = 1k to N = 1M. */
export const FLATNESS_GOAL = 0.15;

const ns = (value: number) => value.toFixed(0);
const signedNs = (value: number) => `${value >= 0 ? "+" : ""}${value.toFixed(0)} ns`;

/**
 * The verdict-cost table: one row per cell, medians in ns (the new-flow
 * interquartile range beside it), and growth against the smallest N of the
 * same K.
 */
export function formatVerdictTable(result: VerdictResult): string {
  const { floor } = result;
  const iqr = (cost: VerdictCost) => `${ns(cost.newFlowQ1Ns)}-${ns(cost.newFlowQ3Ns)}`;
  const rows: string[][] = [["empty program (floor)", "", ns(floor.newFlowNs), iqr(floor), "", ns(floor.establishedOneShotNs), ns(floor.establishedNs), ""]];
  for (const cell of result.cells) {
    const base = result.cells.find((other) => other.identities === cell.identities)!;
    rows.push([
      `pal_to_pod K=${shortCount(cell.identities)}`,
      shortCount(cell.rules),
      ns(cell.newFlowNs),
      iqr(cell),
      growth(cell.newFlowNs, base.newFlowNs),
      ns(cell.establishedOneShotNs),
      ns(cell.establishedNs),
      growth(cell.establishedNs, base.establishedNs),
    ]);
  }
  const table = formatTable(
    ["program", "N", "new flow ns", "new flow IQR", "new vs smallest N", "est. 1-shot ns", "established ns", "est. vs smallest N"],
    rows,
  );
  return `${table}\n\nRounds repeated because other programs used the CPU: ${result.repeatedRounds}; kept although disturbed: ${result.disturbedRoundsKept}.`;
}

/**
 * The entry-flag table: the floor, then the plain, strict and limited probe
 * entry, each against plain (new flow and established).
 */
export function formatEntryFlagTable(result: EntryFlagResult): string {
  const plain = result.rows.find((row) => row.kind === "plain")!;
  const iqr = (cost: VerdictCost) => `${ns(cost.newFlowQ1Ns)}-${ns(cost.newFlowQ3Ns)}`;
  const rows: string[][] = [["empty program (floor)", ns(result.floor.newFlowNs), iqr(result.floor), "", ns(result.floor.establishedOneShotNs), ns(result.floor.establishedNs), ""]];
  for (const row of result.rows) {
    rows.push([
      `${row.kind === "plain" ? "plain allow" : row.kind === "strict" ? "tcp.strict" : "limited (both limits)"}`,
      ns(row.newFlowNs),
      iqr(row),
      row.kind === "plain" ? "" : `${growth(row.newFlowNs, plain.newFlowNs)} (${signedNs(row.newFlowNs - plain.newFlowNs)})`,
      ns(row.establishedOneShotNs),
      ns(row.establishedNs),
      row.kind === "plain" ? "" : `${growth(row.establishedNs, plain.establishedNs)} (${signedNs(row.establishedNs - plain.establishedNs)})`,
    ]);
  }
  const table = formatTable(["entry admitting the flow", "new flow ns", "new flow IQR", "new vs plain", "est. 1-shot ns", "established ns", "est. vs plain"], rows);
  return `${table}\n\nRounds repeated because other programs used the CPU: ${result.repeatedRounds}; kept although disturbed: ${result.disturbedRoundsKept}.`;
}

/**
 * One line per K that has both N = 1k and N = 1M: the growth between them
 * for new and established flows, against {@link FLATNESS_GOAL}.
 */
export function formatFlatnessCheck(result: VerdictResult): string {
  const lines: string[] = [];
  for (const identities of new Set(result.cells.map((cell) => cell.identities))) {
    const from = result.cells.find((cell) => cell.identities === identities && cell.rules === 1000);
    const to = result.cells.find((cell) => cell.identities === identities && cell.rules === 1_000_000);
    if (from === undefined || to === undefined) continue;
    const verdict = (value: number, base: number) => `${growth(value, base)} ${value / base - 1 <= FLATNESS_GOAL ? "(ok)" : "(ABOVE GOAL)"}`;
    lines.push(
      `K=${shortCount(identities)}: N 1k -> 1M: new flow ${verdict(to.newFlowNs, from.newFlowNs)}, ` +
        `established ${verdict(to.establishedNs, from.establishedNs)}; goal <= +${FLATNESS_GOAL * 100}%`,
    );
  }
  return lines.length === 0 ? "flatness check: the grid has no K with both N=1k and N=1M" : lines.join("\n");
}

/**
 * An engine comparison's table: median and range of the runs, ratio to the
 * baseline (of the medians, and run by run against the baseline run right
 * before each, with an interval), CPU per
 * connection (the whole machine's, and Palisade's programs'), errors,
 * disturbed runs.
 */
export function formatRateTable(result: RateResult): string {
  // Throughput in Gbit/s needs decimals; rates do not.
  const digits = result.baselineRate < 100 ? 2 : 0;
  const percent = (ratio: number) => (ratio * 100).toFixed(1);
  const rows = result.rows.map((row) => [
    row.engine === "none" ? "no engine" : row.engine === "tcx-empty" ? "empty program (tcx)" : row.engine,
    row.engine === "none" || row.engine === "tcx-empty" ? "" : shortCount(row.rules),
    row.medianRate.toFixed(digits),
    `${Math.min(...row.rates).toFixed(digits)}-${Math.max(...row.rates).toFixed(digits)}`,
    `${percent(row.medianRate / result.baselineRate)}%`,
    row.ratio === undefined ? "" : `${percent(row.ratio.median)}% (${percent(row.ratio.low)}-${percent(row.ratio.high)}, ${Math.round(row.ratio.confidence * 100)}%)`,
    row.machineNsPerConnection === undefined ? "" : (row.machineNsPerConnection / 1000).toFixed(1),
    row.programCost === undefined ? "" : `${row.programCost.programNsPerConnection.toFixed(0)} (${row.programCost.runsPerConnection.toFixed(1)})`,
    String(row.errors),
    `${row.repeated}/${row.disturbedKept}`,
    row.policyAllowed === undefined ? "" : `${row.policyAllowed.allowed}/${row.policyAllowed.started}`,
  ]);
  return formatTable(
    [
      "engine",
      "N",
      `${result.workload.unit} (median)`,
      "runs min-max",
      "vs no engine",
      "vs the baseline run before each (interval, confidence)",
      "CPU µs/conn",
      "programs ns/conn (runs)",
      "errors",
      "runs repeated/disturbed kept",
      "SYNs via policy lookup",
    ],
    rows,
  );
}

const CONNECTION_MODE_LABELS: Record<ThroughputRow["mode"], string> = {
  "keep-alive": "keep-alive",
  close: "new conn. per request",
  "one-connection": "1 keep-alive conn.",
  bulk: "keep-alive, bulk file",
};
const ms = (value: number) => value.toFixed(3);

/**
 * The throughput table: per policy case and connection mode, the medians of
 * the runs (requests per second with the runs' range, MiB/s, p50, p99),
 * each against the direct case in the same mode, the errors and the packets
 * steered.
 */
export function formatThroughputTable(rows: readonly ThroughputRow[]): string {
  const body = rows.map((row) => {
    const { rate, bytesPerSecond, p50Ms, p99Ms } = rowMedians(row);
    const baseRow = rows.find((other) => other.direct && other.mode === row.mode);
    const base = baseRow === undefined || row.direct ? undefined : rowMedians(baseRow);
    return [
      row.policy,
      CONNECTION_MODE_LABELS[row.mode],
      rate.toFixed(0),
      `${Math.min(...row.rates).toFixed(0)}-${Math.max(...row.rates).toFixed(0)}`,
      (bytesPerSecond / 1024 ** 2).toFixed(1),
      base === undefined ? "" : `${((rate / base.rate) * 100).toFixed(1)}%`,
      ms(p50Ms),
      base === undefined ? "" : `${p50Ms - base.p50Ms >= 0 ? "+" : ""}${ms(p50Ms - base.p50Ms)}`,
      ms(p99Ms),
      String(row.errors),
      String(row.toProxy),
      `${row.repeated}/${row.disturbedKept}`,
    ];
  });
  return formatTable(
    ["policy", "connections", "req/s (median)", "runs min-max", "MiB/s", "vs direct", "p50 ms", "added p50 ms", "p99 ms", "errors", "packets to proxy", "runs repeated/disturbed kept"],
    body,
  );
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

/** The proxy's resident size at start, idle after the load, and holding connections. */
export function formatProxyMemoryTable(startKiB: number, idleKiB: number, held: HeldMemory): string {
  return formatTable(
    ["proxy process", "VmRSS MiB", "open sockets"],
    [
      ["at start, before any request", mib(startKiB), ""],
      ["idle, after the load runs", mib(idleKiB), ""],
      [`holding ${held.held} idle keep-alive connections (${held.failed} failed to open)`, mib(held.residentKiB), String(held.openSockets)],
    ],
  );
}

/**
 * The closing lines of a benchmark: what counts as disturbed, how long it
 * waited for quiet, its total time and the load average at the end.
 */
export function formatRunFooter(gate: QuietGate, quietWaitBudgetMs: number, startedMs: number): string {
  return (
    `A round or run counts as disturbed when other programs (and the host's other guests, by steal time) used more than ${gate.maxForeignShare * 100}% of a core meanwhile; ` +
    `waited ${(gate.waitedMs / 1000).toFixed(0)} s in total for a quiet machine (budget ${quietWaitBudgetMs / 1000} s).\n\n` +
    `total time: ${((performance.now() - startedMs) / 1000).toFixed(0)} s; 1-minute load average at the end: ${loadavg()[0]!.toFixed(2)}`
  );
}

/** Runs a benchmark's main, printing its error (with the stack) and setting exit status 1 on failure. */
export function runBenchmark(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
