import assert from "node:assert/strict";
import { test } from "node:test";
import { parseGrid } from "../conformance/truth-table.ts";
import { verdictTable } from "./verdict-table.ts";

test("pair verdicts print as the conformance truth table over every pod they name, then a legend", () => {
  const table = verdictTable([
    { from: "y/b", to: "x/a", allowed: true, reason: "connected" },
    { from: "x/a", to: "y/b", allowed: false, reason: "timeout" },
  ]);
  const [grid = "", legend] = table.split("\n\n");
  assert.equal(grid, "-   x/a  y/b\nx/a  -    X\ny/b  .    -");
  assert.deepEqual(parseGrid(grid), new Map([["x/a y/b", false], ["y/b x/a", true]]));
  assert.equal(legend, ". allowed   X denied   - not checked (same pod, or no address of that family)");
});
