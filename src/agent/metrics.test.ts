import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Histogram } from "../k8s/prometheus.ts";
import { PolicyCompiler } from "../policy/compiler.ts";
import { MemoryDatapath } from "../../test/lib/memory-datapath.ts";
import { COMMIT_STAGES, CPU_STAGES, renderMetrics, snapshotMetrics } from "./metrics.ts";
import type { CommitStage, CpuStage } from "./metrics.ts";

describe("renderMetrics", () => {
  it("writes every palisade family in Prometheus text", () => {
    const stages = Object.fromEntries(COMMIT_STAGES.map((stage) => [stage, new Histogram([0.01, 0.1])])) as Record<CommitStage, Histogram>;
    stages.compile.observe(0.005);
    stages.compile.observe(0.05);
    stages.compile.observe(2);
    stages.report.observe(0.02);
    const cpu = Object.fromEntries(CPU_STAGES.map((stage) => [stage, new Histogram([0.01, 0.1])])) as Record<CpuStage, Histogram>;
    cpu.compile.observe(0.004);
    const text = renderMetrics({
      policyEntries: 12,
      policyCapacity: 10,
      endpointsFailedClosed: 1,
      reportWriteFailures: { rejected: 1, unavailable: 4 },
      endpoints: 3,
      identities: 5,
      identitiesPending: 2,
      commitStages: stages,
      commitCpu: cpu,
      verdicts: { "policy-deny": 4n },
      rules: [{ kind: "NetworkPolicy", policy: "x/p\"q", rule: "ingress[0]", packets: 9n }],
      k8sEvents: new Map([["Pod", 7]]),
    });
    const lines = text.split("\n");
    for (const expected of [
      "palisade_policy_entries 12",
      'palisade_map_max_entries{map="pal_policy"} 10',
      'palisade_map_capacity_exceeded{map="pal_policy"} 1',
      "palisade_endpoints_failed_closed 1",
      'palisade_report_write_failures_total{reason="rejected"} 1',
      'palisade_report_write_failures_total{reason="unavailable"} 4',
      "palisade_endpoints 3",
      "palisade_identities 5",
      "palisade_identities_pending 2",
      'palisade_commit_stage_seconds_bucket{stage="compile",le="0.01"} 1',
      'palisade_commit_stage_seconds_bucket{stage="compile",le="0.1"} 2',
      'palisade_commit_stage_seconds_bucket{stage="compile",le="+Inf"} 3',
      'palisade_commit_stage_seconds_count{stage="compile"} 3',
      'palisade_commit_stage_seconds_sum{stage="report"} 0.02',
      'palisade_commit_stage_seconds_count{stage="wait"} 0',
      'palisade_commit_stage_cpu_seconds_bucket{stage="compile",le="0.01"} 1',
      'palisade_commit_stage_cpu_seconds_sum{stage="compile"} 0.004',
      'palisade_commit_stage_cpu_seconds_count{stage="write"} 0',
      'palisade_verdicts_total{reason="policy-deny"} 4',
      'palisade_rule_verdicts_total{kind="NetworkPolicy",policy="x/p\\"q",rule="ingress[0]"} 9',
      'palisade_k8s_events_total{kind="Pod"} 7',
      "# TYPE palisade_commit_stage_seconds histogram",
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
    const snapshot = snapshotMetrics({ compiled: compiler, datapath, commitStages: Object.fromEntries(COMMIT_STAGES.map((stage) => [stage, new Histogram([1])])) as Record<CommitStage, Histogram>, commitCpu: Object.fromEntries(CPU_STAGES.map((stage) => [stage, new Histogram([1])])) as Record<CpuStage, Histogram>, k8sEvents: new Map(), reconciler: { mapFull: undefined, reportWriteFailures: { rejected: 0, unavailable: 0 } } });
    assert.deepEqual(snapshot.rules, [{ kind: "NetworkPolicy", policy: "x/web", rule: "ingress[0]", packets: 4n }]);
    assert.deepEqual(snapshot.verdicts, { "policy-deny": 2n });
    assert.equal(snapshot.endpoints, 1);
    assert.equal(snapshot.identitiesPending, 0);
  });
});
