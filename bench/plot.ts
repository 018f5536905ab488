/**
 * `npm run bench:plot -- FILE [DIR]`: turns the engine comparison's JSON
 * (`node dist/bench/datapath.js --only engines --json FILE`) into one SVG
 * per workload in DIR (default `docs/img`), `engines-<workload>.svg`.
 *
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RateResult } from "./lib/engine-comparison.ts";
import { renderSvg, workloadPlotSpec } from "./lib/engine-plot.ts";

/** What `datapath.js --json` writes. */
interface EnginesJson {
  date: string;
  results: RateResult[];
}

async function main(): Promise<void> {
  const [file, dir = "docs/img"] = process.argv.slice(2);
  if (file === undefined) throw new Error("Cannot plot: name the JSON file that `datapath.js --json FILE` wrote");
  const json = JSON.parse(readFileSync(file, "utf8")) as EnginesJson;
  mkdirSync(dir, { recursive: true });
  for (const result of json.results) {
    const path = join(dir, `engines-${result.workload.name}.svg`);
    writeFileSync(path, await renderSvg(workloadPlotSpec(result, json.date)));
    process.stderr.write(`plot: ${path}\n`);
  }
}

await main();
