import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Histogram } from "../k8s/prometheus.ts";
import { renderMetrics } from "./metrics.ts";

describe("renderMetrics", () => {
  it("writes every palisade family in Prometheus text", () => {
    const h = new Histogram([0.01, 0.1]);
    h.observe(0.005);
    h.observe(0.05);
    h.observe(2);
    const text = renderMetrics({
      policyEntries: 12,
      endpoints: 3,
      identities: 5,
      identitiesPending: 2,
      applyDuration: h,
      verdicts: { "policy-deny": 4n },
      rules: [{ kind: "NetworkPolicy", policy: "x/p\"q", rule: "ingress[0]", packets: 9n }],
      k8sEvents: new Map([["Pod", 7]]),
    });
    const lines = text.split("\n");
    for (const expected of [
      "palisade_policy_entries 12",
      "palisade_endpoints 3",
      "palisade_identities 5",
      "palisade_identities_pending 2",
      'palisade_apply_duration_seconds_bucket{le="0.01"} 1',
      'palisade_apply_duration_seconds_bucket{le="0.1"} 2',
      'palisade_apply_duration_seconds_bucket{le="+Inf"} 3',
      "palisade_apply_duration_seconds_count 3",
      'palisade_verdicts_total{reason="policy-deny"} 4',
      'palisade_rule_verdicts_total{kind="NetworkPolicy",policy="x/p\\"q",rule="ingress[0]"} 9',
      'palisade_k8s_events_total{kind="Pod"} 7',
      "# TYPE palisade_apply_duration_seconds histogram",
    ]) {
      assert.ok(lines.includes(expected), `missing line ${expected} in:\n${text}`);
    }
    assert.ok(text.endsWith("\n"));
  });
});
