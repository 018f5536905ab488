import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { NodeReport } from "../agent/report.ts";
import { nodeLag } from "./wait.ts";

const rv = { pods: "10", namespaces: "5" };

function report(policies: NodeReport["policies"]): NodeReport {
  return { node: "n1", appliedAt: "t", policies, endpoints: 0, podResourceVersion: "10", namespaceResourceVersion: "5" };
}

function netpol(uid: string, generation: number): { kind: "NetworkPolicy"; object: { metadata: { namespace: string; name: string; uid: string; generation: number } } } {
  return { kind: "NetworkPolicy", object: { metadata: { namespace: "x", name: "p", uid, generation } } };
}

describe("nodeLag", () => {
  test("nothing lags when the node enforces every current generation and no more", () => {
    assert.deepEqual(nodeLag("n1", report([{ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 2 }]), [netpol("u1", 2)], rv), []);
  });

  test("a policy the node still enforces after its deletion lags", () => {
    assert.deepEqual(nodeLag("n1", report([{ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 1 }]), [], rv), [
      'node "n1" still enforces deleted NetworkPolicy "x/p"',
    ]);
  });

  test("a policy recreated under the same name is not taken for its predecessor at the same generation", () => {
    assert.deepEqual(nodeLag("n1", report([{ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "old", generation: 1 }]), [netpol("new", 1)], rv), [
      'node "n1" enforces NetworkPolicy "x/p" at no generation, not 1',
      'node "n1" still enforces deleted NetworkPolicy "x/p"',
    ]);
  });

  test("pods and namespaces behind the start's resourceVersions lag", () => {
    assert.deepEqual(nodeLag("n1", { ...report([]), podResourceVersion: "9", namespaceResourceVersion: "4" }, [], rv), [
      'node "n1" has applied pods up to resourceVersion 9, not 10',
      'node "n1" has applied namespaces up to resourceVersion 4, not 5',
    ]);
  });
});
