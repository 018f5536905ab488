import assert from "node:assert/strict";
import { test } from "node:test";
import { MODEL_PODS } from "./model.ts";
import { allowedExcept, expected, expectedVerdicts, patternMatches } from "./reachability.ts";

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

test("expected verdicts cover every ordered pair of distinct pods", () => {
  const verdicts = expectedVerdicts(allowedExcept(["*", "x/*", false], ["x/a", "*", false]), MODEL_PODS);
  assert.equal(verdicts.size, MODEL_PODS.length * (MODEL_PODS.length - 1));
  assert.equal(verdicts.get("x/b x/a"), false);
  assert.equal(verdicts.get("x/b y/a"), true);
  assert.equal(verdicts.get("x/a y/a"), false);
  assert.equal(verdicts.has("x/a x/a"), false);
});
