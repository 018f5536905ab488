import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Histogram } from "../k8s/prometheus.ts";
import { PolicyCompiler } from "../policy/compiler.ts";
import { MemoryDatapath } from "../../test/lib/memory-datapath.ts";
import { renderMetrics, snapshotMetrics } from "./metrics.ts";

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

describe("snapshotMetrics", () => {
  it("names rule counters by their policy and rule, and leaves out rule ids the compiler does not know", () => {
    const compiler = new PolicyCompiler({ nodeName: "n1" });
    compiler.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
    compiler.upsertPod({ namespace: "x", name: "a", labels: { app: "web" }, ips: ["10.0.0.1"], namedPorts: [], nodeName: "n1" });
    compiler.upsertPolicy({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { namespace: "x", name: "web" },
      spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: {} }] }] },
    });
    compiler.commit();
    const [ruleId] = compiler.state().rules.keys();
    assert.ok(ruleId !== undefined);
    const datapath = new MemoryDatapath();
    datapath.rules.set(ruleId, { packets: 4n, bytes: 240n });
    datapath.rules.set(ruleId + 100, { packets: 1n, bytes: 60n });
    datapath.reasons["policy-deny"] = { packets: 2n, bytes: 120n };
    const snapshot = snapshotMetrics({ compiled: compiler, datapath, applyDuration: new Histogram([1]), k8sEvents: new Map() });
    assert.deepEqual(snapshot.rules, [{ kind: "NetworkPolicy", policy: "x/web", rule: "ingress[0]", packets: 4n }]);
    assert.deepEqual(snapshot.verdicts, { "policy-deny": 2n });
    assert.equal(snapshot.endpoints, 1);
    assert.equal(snapshot.identitiesPending, 0);
  });
});
