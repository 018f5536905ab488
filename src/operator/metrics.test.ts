import assert from "node:assert/strict";
import { test } from "node:test";
import { OperatorMetrics } from "./metrics.ts";

test("renders reconciles by result and leadership in the Prometheus text format", () => {
  const metrics = new OperatorMetrics();
  metrics.countReconcile("success");
  metrics.countReconcile("success");
  metrics.countReconcile("error");
  metrics.setLeader(true);
  const lines = metrics.render().split("\n");
  assert.ok(lines.includes('palisade_operator_reconciles_total{result="success"} 2'));
  assert.ok(lines.includes('palisade_operator_reconciles_total{result="error"} 1'));
  assert.ok(lines.includes("# TYPE palisade_operator_reconciles_total counter"));
  assert.ok(lines.includes("palisade_operator_is_leader 1"));
  metrics.setLeader(false);
  assert.ok(metrics.render().split("\n").includes("palisade_operator_is_leader 0"));
});
