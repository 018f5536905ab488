import assert from "node:assert/strict";
import { test } from "node:test";
import { MODEL_PODS } from "./model.ts";
import { allowedExcept, expectedVerdicts } from "./reachability.ts";
import { parseGrid, printGrid } from "./truth-table.ts";

test("a grid has a row per source and a column per destination", () => {
  assert.equal(printGrid(new Map([["x/a x/b", true], ["x/b x/a", false]]), ["x/a", "x/b"]), "-   x/a  x/b\nx/a  -    .\nx/b  X    -");
});

test("a printed grid parses back to the same verdicts, self pairs left out", () => {
  const verdicts = expectedVerdicts(allowedExcept(["*", "x/*", false], ["x/a", "*", false]), MODEL_PODS);
  const grid = printGrid(verdicts, MODEL_PODS);
  assert.equal(grid.split("\n").length, 10);
  assert.match(grid.split("\n")[2] ?? "", /^x\/b\s+X\s+-\s+X\s+\.\s/);
  assert.deepEqual(parseGrid(grid), verdicts);
  assert.throws(() => parseGrid("-   x/a x/b\nx/a  -   ?"), /cell "\?" is not/);
});
