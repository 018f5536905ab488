import assert from "node:assert/strict";
import { test } from "node:test";
import { renderSvg } from "./engine-plot.ts";
import { latencyPlotSpec, type LatencyJson, type LatencySample } from "./latency-plot.ts";

function sample(inMaps: number): LatencySample {
  const split = { delivered: inMaps - 1, wait: 0.25, sync: 0.25, compile: 0.25, write: 0.25, report: 8, back: 10 };
  return { answered: inMaps - 2, inMaps, reportSeen: inMaps + 10, statusSeen: inMaps + 30, split };
}

const json: LatencyJson = { kind: "policy-latency", date: "2026-12-07T02:00:00Z", nodes: 2, samples: [sample(12), sample(8), sample(40), sample(9)] };

test("the latency plot gives each series its empirical CDF, sorted, ending at 1, and marks both targets", () => {
  const spec = latencyPlotSpec(json) as unknown as { layer: { data: { values: Record<string, unknown>[] } }[] };
  const [points, targets] = spec.layer.map((layer) => layer.data.values);
  const maps = points?.filter((p) => p["series"] === "every node's maps hold it").map((p) => [p["ms"], p["fraction"]]);
  assert.deepEqual(maps, [[8, 0.25], [9, 0.5], [12, 0.75], [40, 1]]);
  assert.deepEqual(points?.filter((p) => p["series"] === "the policy's status says Programmed").map((p) => p["ms"]), [38, 39, 42, 70]);
  assert.deepEqual(targets?.map((t) => [t["ms"], t["fraction"]]), [[10, 0.5], [30, 0.99]]);
});

test("Vega renders the latency plot to an SVG naming its series and targets", async () => {
  const svg = await renderSvg(latencyPlotSpec(json));
  assert.match(svg, /^<svg /);
  for (const text of ["Policy write to enforcement", "every node's report is seen", "target p99 ≤ 30 ms (maps)", "4 changes of one policy"]) assert.ok(svg.includes(text), `the SVG lacks "${text}"`);
});
