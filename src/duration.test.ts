import assert from "node:assert/strict";
import { test } from "node:test";
import { notADuration, parseDuration } from "./duration.ts";

test("durations take ms, s and m, a decimal number, and seconds without a unit", () => {
  assert.equal(parseDuration("60s"), 60_000);
  assert.equal(parseDuration("2m"), 120_000);
  assert.equal(parseDuration("1.5m"), 90_000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("5"), 5000);
  assert.equal(parseDuration("0s"), 0);
});

test("anything else is not a duration", () => {
  for (const text of ["soon", "", "-1s", "1h", "1 s", "s", ".5s", "1.s", "1e3"]) assert.equal(parseDuration(text), undefined, text);
  assert.equal(notADuration("--timeout", "soon"), '--timeout "soon" is not a duration (e.g. 60s, 2m, 500ms)');
});
