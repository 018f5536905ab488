import assert from "node:assert/strict";
import { test } from "node:test";
import type { RateResult, RateRow } from "./engine-comparison.ts";
import { renderSvg, workloadPlotSpec } from "./engine-plot.ts";

function row(engine: RateRow["engine"], rules: number, medianRate: number): RateRow {
  return { engine, rules, rates: [medianRate], medianRate, errors: 0, repeated: 0, disturbedKept: 0, runRates: [medianRate] };
}

const result: RateResult = {
  workload: { name: "wrk-close", title: "HTTP requests per second", unit: "req/s" },
  baselineRate: 2000,
  rows: [row("none", 0, 2000), row("iptables", 1, 1800), row("iptables", 1000, 500), row("nftables", 1000, 1700), row("palisade", 0, 1960), row("palisade", 1000, 1900)],
};

test("the plot places each engine's median as a percent of the baseline over N, with the baseline and unselected Palisade as levels", () => {
  const spec = workloadPlotSpec(result, "2026-12-06T10:00:00Z") as unknown as { layer: { data: { values: Record<string, unknown>[] } }[] };
  const [levels, points] = spec.layer.map((layer) => layer.data.values);
  assert.deepEqual(levels, [
    { level: "no engine (2000 req/s)", percent: 100 },
    { level: "Palisade, no policy selects the pods", percent: 98 },
  ]);
  assert.deepEqual(points?.map((p) => [p["engine"], p["rules"], p["percent"]]), [
    ["iptables (chain)", 1, 90],
    ["iptables (chain)", 1000, 25],
    ["nftables (set)", 1000, 85],
    ["Palisade", 1000, 95],
  ]);
});

test("Vega renders the plot to an SVG naming the workload and every engine", async () => {
  const svg = await renderSvg(workloadPlotSpec(result, "2026-12-06T10:00:00Z"));
  assert.match(svg, /^<svg /);
  for (const text of ["HTTP requests per second", "iptables (chain)", "nftables (set)", "Palisade", "no engine (2000 req/s)", "rules N (log scale)"]) assert.ok(svg.includes(text), `the SVG lacks "${text}"`);
});

test("where the runs were paired with baseline runs, the plot takes the median of those ratios", () => {
  const paired: RateResult = {
    ...result,
    rows: [row("none", 0, 2000), { ...row("palisade", 1000, 1900), ratio: { median: 0.931, low: 0.9, high: 0.97, confidence: 0.97 } }, { ...row("tcx-empty", 0, 1990), ratio: { median: 0.984, low: 0.95, high: 1.01, confidence: 0.97 } }],
  };
  const spec = workloadPlotSpec(paired, "2026-12-07T10:00:00Z") as unknown as { layer: { data: { values: Record<string, unknown>[] } }[] };
  const [levels, points] = spec.layer.map((layer) => layer.data.values);
  assert.deepEqual(levels?.map((level) => level["percent"]), [100, 98.4]);
  assert.deepEqual(points?.map((p) => [p["engine"], p["percent"]]), [["Palisade", 93.1]]);
});
