import assert from "node:assert/strict";
import { test } from "node:test";
import { MODEL_PODS } from "./model.ts";
import { allowedExcept, expected, expectedVerdicts, parseGrid, patternMatches, printGrid } from "./reachability.ts";

test("patterns match every pod, a namespace, a pod name in every namespace, or one pod", () => {
  assert.ok(patternMatches("*", "y/c"));
  assert.ok(patternMatches("x/*", "x/b") && !patternMatches("x/*", "y/b"));
  assert.ok(patternMatches("*/a", "z/a") && !patternMatches("*/a", "z/b"));
  assert.ok(patternMatches("x/a", "x/a") && !patternMatches("x/a", "x/b"));
});

test("later overrides win, as upstream's Expect calls do", () => {
  const expectation = allowedExcept(["*", "x/a", false], ["x/b", "x/a", true]);
  assert.equal(expected(expectation, "y/a", "x/a"), false);
  assert.equal(expected(expectation, "x/b", "x/a"), true);
  assert.equal(expected(expectation, "x/a", "y/a"), true);
});

test("a printed grid parses back to the same verdicts, self pairs left out", () => {
  const verdicts = expectedVerdicts(allowedExcept(["*", "x/*", false], ["x/a", "*", false]), MODEL_PODS);
  const grid = printGrid(verdicts, MODEL_PODS);
  assert.equal(grid.split("\n").length, 10);
  assert.match(grid.split("\n")[2] ?? "", /^x\/b\s+X\s+-\s+X\s+\.\s/);
  assert.deepEqual(parseGrid(grid), verdicts);
  assert.throws(() => parseGrid("-   x/a x/b\nx/a  -   ?"), /cell "\?" is not/);
});
