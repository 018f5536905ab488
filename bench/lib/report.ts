/**
 * The benchmark's tables: verdict cost per packet over the N x K grid, the
 * flatness check, and connections per second per engine, each next to the
 * baseline measured in the same run.
 *
 * @module
 */
import type { RateResult } from "./connection-rate.ts";
import { formatTable, growth, shortCount } from "./stats.ts";
import type { VerdictCost, VerdictResult } from "./verdict-cost.ts";

/** Flatness goal: verdict cost may grow at most this much from N = 1k to N = 1M. */
export const FLATNESS_GOAL = 0.15;

const ns = (value: number) => value.toFixed(0);

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

/** The connection-rate table: median and range of the windows, ratio to the baseline, errors, disturbed runs. */
export function formatRateTable(result: RateResult): string {
  const rows = result.rows.map((row) => [
    row.engine === "none" ? "no policy" : row.engine,
    row.engine === "none" ? "" : shortCount(row.rules),
    row.medianRate.toFixed(0),
    `${Math.min(...row.rates).toFixed(0)}-${Math.max(...row.rates).toFixed(0)}`,
    `${((row.medianRate / result.baselineRate) * 100).toFixed(1)}%`,
    String(row.errors),
    `${row.repeated}/${row.disturbedKept}`,
    row.policyAllowed === undefined ? "" : `${row.policyAllowed.allowed}/${row.policyAllowed.started}`,
  ]);
  const table = formatTable(
    ["engine", "N", "conn/s (median)", "windows min-max", "vs no policy", "errors", "runs repeated/disturbed kept", "SYNs via policy lookup"],
    rows,
  );
  return table;
}
