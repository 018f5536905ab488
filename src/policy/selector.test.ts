import assert from "node:assert/strict";
import { test } from "node:test";
import type { LabelSelector } from "./api-types.ts";
import { canonicalLabels, matchesSelector } from "./selector.ts";

const labels = { app: "web", tier: "1" };

const cases: [name: string, selector: LabelSelector, expected: boolean][] = [
  ["empty selector matches everything", {}, true],
  ["empty matchLabels and matchExpressions match everything", { matchLabels: {}, matchExpressions: [] }, true],
  ["matchLabels equal", { matchLabels: { app: "web" } }, true],
  ["matchLabels all must hold", { matchLabels: { app: "web", tier: "2" } }, false],
  ["matchLabels on a missing key", { matchLabels: { env: "prod" } }, false],
  ["In with the value", { matchExpressions: [{ key: "tier", operator: "In", values: ["1", "2"] }] }, true],
  ["In without the value", { matchExpressions: [{ key: "tier", operator: "In", values: ["2"] }] }, false],
  ["In on a missing key", { matchExpressions: [{ key: "env", operator: "In", values: ["prod"] }] }, false],
  ["NotIn without the value", { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["2"] }] }, true],
  ["NotIn with the value", { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["1"] }] }, false],
  ["NotIn on a missing key matches", { matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] }, true],
  ["Exists", { matchExpressions: [{ key: "app", operator: "Exists" }] }, true],
  ["Exists on a missing key", { matchExpressions: [{ key: "env", operator: "Exists" }] }, false],
  ["DoesNotExist", { matchExpressions: [{ key: "env", operator: "DoesNotExist" }] }, true],
  ["DoesNotExist on a present key", { matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, false],
  [
    "matchLabels AND matchExpressions",
    { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "In", values: ["2"] }] },
    false,
  ],
];

for (const [name, selector, expected] of cases) {
  test(`matchesSelector: ${name}`, () => {
    assert.equal(matchesSelector(selector, labels), expected);
  });
}

test("matchesSelector: inherited object properties are not labels", () => {
  assert.equal(matchesSelector({ matchExpressions: [{ key: "toString", operator: "Exists" }] }, {}), false);
  assert.equal(matchesSelector({ matchLabels: { constructor: "x" } }, {}), false);
});

test("canonicalLabels sorts keys", () => {
  assert.equal(canonicalLabels({ b: "2", a: "1" }), "a=1,b=2");
  assert.equal(canonicalLabels({}), "");
});
