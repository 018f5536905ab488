/**
 * The engine comparison's plots: one Vega-Lite chart per workload, each
 * engine's median against the no-engine baseline of the same run over the
 * rule count N on a log axis, rendered to SVG without a browser. Palisade
 * with no policy selecting the pods (N = 0, which a log axis cannot place)
 * is a dashed level, as are the baseline and the empty program on
 * Palisade's hooks.
 *
 * @module
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { RateResult, RateRow } from "./engine-comparison.ts";

const ENGINE_LABELS = { iptables: "iptables (chain)", nftables: "nftables (set)", palisade: "Palisade" } as const;

/**
 * The Vega-Lite spec of one workload's plot: percent of the baseline by
 * engine over N (the median of the runs' ratios to the baseline run before
 * each, when the results have them), the baseline at 100% and Palisade
 * unselected and the empty program as levels.
 */
export function workloadPlotSpec(result: RateResult, date: string): TopLevelSpec {
  // Against the baseline run before each run where the results have it (runs since 2026-12-07), else the medians' ratio.
  const percent = (row: RateRow) => Math.round((row.ratio?.median ?? row.medianRate / result.baselineRate) * 1000) / 10;
  const points = result.rows
    .filter((row) => row.engine !== "none" && row.rules > 0)
    .map((row) => ({ engine: ENGINE_LABELS[row.engine as keyof typeof ENGINE_LABELS], rules: row.rules, percent: percent(row), median: row.medianRate }));
  const unselected = result.rows.find((row) => row.engine === "palisade" && row.rules === 0);
  const empty = result.rows.find((row) => row.engine === "tcx-empty");
  const levels = [
    { level: `no engine (${result.baselineRate.toFixed(result.baselineRate < 100 ? 2 : 0)} ${result.workload.unit})`, percent: 100 },
    ...(empty ? [{ level: "the empty program on Palisade's hooks (tcx)", percent: percent(empty) }] : []),
    ...(unselected ? [{ level: "Palisade, no policy selects the pods", percent: percent(unselected) }] : []),
  ];
  const x = { field: "rules", type: "quantitative" as const, scale: { type: "log" as const }, title: "rules N (log scale)", axis: { values: [1, 10, 100, 1000, 10_000, 100_000], format: "~s" } };
  const y = { field: "percent", type: "quantitative" as const, title: `% of no engine (${result.workload.unit}, median of paired runs)`, scale: { domain: [0, Math.max(110, ...points.map((p) => p.percent))] } };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: result.workload.title, subtitle: `engine comparison between two pods, ${date.slice(0, 10)}`, fontSize: 12, anchor: "start" },
    width: 520,
    height: 260,
    layer: [
      {
        data: { values: levels },
        mark: { type: "rule", strokeDash: [4, 3] },
        encoding: { y, color: { field: "level", type: "nominal", title: null, scale: { domain: levels.map((l) => l.level), range: ["#333333", "#1f77b4"] }, legend: { labelLimit: 320 } } },
      },
      {
        data: { values: points },
        mark: { type: "line", point: true },
        encoding: { x, y, color: { field: "engine", type: "nominal", title: null, scale: { domain: Object.values(ENGINE_LABELS), range: ["#d62728", "#ff7f0e", "#1f77b4"] }, legend: { labelLimit: 320 } } },
      },
    ],
    resolve: { scale: { color: "independent" } },
  };
}

/** Renders a Vega-Lite spec to SVG without a browser. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  return view.toSVG();
}

