/**
 * `npm run bench:plot -- FILE [DIR]`: turns a benchmark's JSON into SVG plots
 * in DIR (default `docs/img`): the engine comparison's
 * (`node dist/bench/datapath.js --only engines --json FILE`) into one plot per
 * workload, `engines-<workload>.svg`; the policy latency's
 * (`node dist/bench/policy-latency.js --json FILE`) into `policy-latency.svg`.
 *
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import type { RateResult } from "./lib/engine-comparison.ts";
import { renderSvg, workloadPlotSpec } from "./lib/engine-plot.ts";
import { latencyPlotSpec, type LatencyJson } from "./lib/latency-plot.ts";

/** What `datapath.js --json` writes. */
interface EnginesJson {
  kind?: undefined;
  date: string;
  results: RateResult[];
}

/** The plots of one JSON file, by file name. */
function plots(json: EnginesJson | LatencyJson): [string, TopLevelSpec][] {
  if (json.kind === "policy-latency") return [["policy-latency.svg", latencyPlotSpec(json)]];
  return json.results.map((result) => [`engines-${result.workload.name}.svg`, workloadPlotSpec(result, json.date)]);
}

async function main(): Promise<void> {
  const [file, dir = "docs/img"] = process.argv.slice(2);
  if (file === undefined) throw new Error("Cannot plot: name the JSON file a benchmark's --json FILE wrote");
  mkdirSync(dir, { recursive: true });
  for (const [name, spec] of plots(JSON.parse(readFileSync(file, "utf8")) as EnginesJson | LatencyJson)) {
    const path = join(dir, name);
    writeFileSync(path, await renderSvg(spec));
    process.stderr.write(`plot: ${path}\n`);
  }
}

await main();
