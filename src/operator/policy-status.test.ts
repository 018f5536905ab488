import type { V1Pod } from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { EBPFNetworkPolicy } from "../policy/api-types.ts";
import type { NodeReport } from "../k8s/node-report.ts";
import { computePolicyStatus, describeIssues } from "./policy-status.ts";

function policy(generation: number, app = "web"): EBPFNetworkPolicy {
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: "p", namespace: "x", uid: "u1", generation },
    spec: { selector: { matchLabels: { app } }, ingress: [{ from: [{ podSelector: {} }] }] },
  };
}

function pod(name: string, labels: Record<string, string>, phase: string): V1Pod {
  return { metadata: { name, namespace: "x", labels }, status: { phase } };
}

function report(node: string, generation: number | undefined, uid = "u1"): NodeReport {
  const policies: NodeReport["policies"] = generation === undefined ? [] : [{ kind: "EBPFNetworkPolicy", namespace: "x", name: "p", uid, generation }];
  return { node, appliedAt: "t", policies, endpoints: 1, podResourceVersion: "1", namespaceResourceVersion: "1", pods: 3, namespaces: 1 };
}

describe("computePolicyStatus", () => {
  const pods = [pod("a", { app: "web" }, "Running"), pod("b", { app: "web" }, "Pending"), pod("c", { app: "db" }, "Running")];

  test("counts Running pods its selector matches", () => {
    assert.equal(computePolicyStatus({ policy: policy(1), pods, nodes: [], reports: new Map() }).fields.selectedPods, 1);
  });

  test("is Programmed when every node reports the current generation", () => {
    const decision = computePolicyStatus({ policy: policy(3), pods, nodes: ["n1", "n2"], reports: new Map([["n1", report("n1", 3)], ["n2", report("n2", 3)]]) });
    assert.deepEqual(decision.conditions.map((c) => [c.type, c.status, c.reason]), [["Accepted", "True", "Valid"], ["Programmed", "True", "Programmed"]]);
    assert.deepEqual(decision.fields, { selectedPods: 1, programmedNodes: 2, totalNodes: 2, programmed: "2/2", observedGeneration: 3 });
  });

  test("names the lagging nodes and why", () => {
    const reports = new Map<string, NodeReport | Error>([["n1", report("n1", 3)], ["n2", report("n2", 2)], ["n3", report("n3", undefined)], ["n5", new Error("bad json")]]);
    const decision = computePolicyStatus({ policy: policy(3), pods, nodes: ["n1", "n2", "n3", "n4", "n5"], reports });
    assert.equal(decision.fields.programmed, "1/5");
    assert.deepEqual(decision.conditions[1], {
      type: "Programmed",
      status: "False",
      reason: "Pending",
      message: '1 of 5 nodes enforce generation 3; waiting for "n2" (at generation 2), "n3" (policy not listed), "n4" (no report), "n5" (bad json)',
    });
  });

  test("a report of a newer generation than the cached policy does not count as programmed", () => {
    const decision = computePolicyStatus({ policy: policy(3), pods, nodes: ["n1"], reports: new Map([["n1", report("n1", 4)]]) });
    assert.equal(decision.fields.programmedNodes, 0);
  });

  test("is Programmed=False with reason MapFull naming node, map, needed and capacity when a pod it selects failed closed there, and only then", () => {
    const full: NodeReport = { ...report("n2", 3), mapFull: { map: "pal_policy", needed: 1200, capacity: 1000, failedClosed: ["x/a"] } };
    const decision = computePolicyStatus({ policy: policy(3), pods, nodes: ["n1", "n2"], reports: new Map([["n1", report("n1", 2)], ["n2", full]]) });
    assert.deepEqual(decision.conditions[1], {
      type: "Programmed",
      status: "False",
      reason: "MapFull",
      message: '0 of 2 nodes enforce generation 3; waiting for "n2" (node "n2" cannot program every endpoint: map pal_policy needs 1200 entries, its capacity is 1000; 1 endpoints fail closed (x/a)), "n1" (at generation 2)',
    });
    const otherPod = { ...full, mapFull: { map: "pal_policy", needed: 1200, capacity: 1000, failedClosed: ["x/c"] } };
    assert.equal(computePolicyStatus({ policy: policy(3), pods, nodes: ["n2"], reports: new Map([["n2", otherPod]]) }).conditions[1]?.status, "True", "x/c is not selected by the policy");
  });

  test("is Programmed=Unknown with reason ReportTooLarge when a node's report could not list its policies", () => {
    const overflow: NodeReport = { ...report("n1", undefined), overflow: { policies: 90_000 } };
    const decision = computePolicyStatus({ policy: policy(3), pods, nodes: ["n1"], reports: new Map([["n1", overflow]]) });
    assert.deepEqual([decision.conditions[1]?.status, decision.conditions[1]?.reason], ["Unknown", "ReportTooLarge"]);
    assert.match(decision.conditions[1]?.message ?? "", /node "n1" applied 90000 policies but its report is too large to list them/);
  });

  test("a deleted policy of the same name and generation does not count for its successor", () => {
    const decision = computePolicyStatus({ policy: policy(1), pods, nodes: ["n1"], reports: new Map([["n1", report("n1", 1, "u0")]]) });
    assert.equal(decision.fields.programmedNodes, 0);
    assert.match(decision.conditions[1]?.message ?? "", /"n1" \(policy not listed\)/);
  });

  test("is not Programmed in a cluster without Nodes", () => {
    const decision = computePolicyStatus({ policy: policy(1), pods, nodes: [], reports: new Map() });
    assert.deepEqual([decision.conditions[1]?.status, decision.conditions[1]?.reason], ["False", "NoNodes"]);
  });

  test("refuses an invalid label value, naming the field, and selects and programs nothing", () => {
    const decision = computePolicyStatus({ policy: policy(2, "a b"), pods, nodes: ["n1"], reports: new Map([["n1", report("n1", 2)]]) });
    const [accepted, programmed] = decision.conditions;
    assert.equal(accepted?.status, "False");
    assert.equal(accepted?.reason, "Invalid");
    assert.equal(accepted?.message, describeIssues(decision.issues));
    assert.match(accepted?.message ?? "", /^spec\.selector\.matchLabels\["app"\] "a b" is not a valid label value/);
    assert.equal(programmed?.reason, "NotAccepted");
    assert.deepEqual([decision.fields.selectedPods, decision.fields.programmedNodes], [0, 0]);
  });
});

describe("describeIssues", () => {
  test("joins field and message, and issues with a semicolon", () => {
    assert.equal(describeIssues([{ field: "", message: "is empty" }, { field: "spec.x", message: "is 0" }]), "is empty; spec.x is 0");
  });
});
