import assert from "node:assert/strict";
import { test } from "node:test";
import { Histogram, renderPrometheus } from "./prometheus.ts";

test("renders families with HELP, TYPE, escaped labels and bigint values", () => {
  const text = renderPrometheus([
    { name: "palisade_a", type: "gauge", help: "A gauge.", samples: [{ value: 3 }] },
    { name: "palisade_b_total", type: "counter", help: "A counter.", samples: [{ labels: { policy: 'x/p"q\\r\nz', rule: "ingress[0]" }, value: 9n }] },
  ]);
  assert.equal(
    text,
    [
      "# HELP palisade_a A gauge.",
      "# TYPE palisade_a gauge",
      "palisade_a 3",
      "# HELP palisade_b_total A counter.",
      "# TYPE palisade_b_total counter",
      'palisade_b_total{policy="x/p\\"q\\\\r\\nz",rule="ingress[0]"} 9',
      "",
    ].join("\n"),
  );
});

test("a histogram's buckets are cumulative and end with +Inf, sum and count", () => {
  const h = new Histogram([0.01, 0.1]);
  for (const value of [0.005, 0.05, 2]) h.observe(value);
  const lines = renderPrometheus([{ name: "d_seconds", type: "histogram", help: "D.", samples: h.samples() }]).split("\n");
  assert.deepEqual(lines.slice(2, 7), ['d_seconds_bucket{le="0.01"} 1', 'd_seconds_bucket{le="0.1"} 2', 'd_seconds_bucket{le="+Inf"} 3', "d_seconds_sum 2.055", "d_seconds_count 3"]);
});
