import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NodeReportError, type NodeReport } from "../k8s/node-report.ts";
import { nodeLag } from "./wait-programmed.ts";

// Pods: the newest at 10, the list at 20 (changes of other kinds since), 3 of them. Namespaces: newest 5, list 20, 4.
const rv = { pods: { newest: "10", list: "20", count: 3 }, namespaces: { newest: "5", list: "20", count: 4 } };

function report(policies: NodeReport["policies"]): NodeReport {
  return { node: "n1", appliedAt: "t", policies, endpoints: 0, podResourceVersion: "10", namespaceResourceVersion: "5", pods: 3, namespaces: 4 };
}

function netpol(uid: string, generation: number): { kind: "NetworkPolicy"; object: { metadata: { namespace: string; name: string; uid: string; generation: number } } } {
  return { kind: "NetworkPolicy", object: { metadata: { namespace: "x", name: "p", uid, generation } } };
}

describe("nodeLag", () => {
  test("nothing lags when the node enforces every current generation and no more", () => {
    assert.deepEqual(nodeLag("n1", report([{ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 2 }]), [netpol("u1", 2)], rv), []);
  });

  test("a node without a readable report lags, saying why", () => {
    assert.deepEqual(nodeLag("n1", undefined, [], rv), ['node "n1" has no agent report yet']);
    assert.deepEqual(nodeLag("n1", new NodeReportError("Cannot read node report \"palisade-system/palisade-node-n1\": pods is not a whole number"), [], rv), [
      'node "n1" has no readable agent report: Cannot read node report "palisade-system/palisade-node-n1": pods is not a whole number',
    ]);
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

  test("pods and namespaces behind the newest object at the start lag", () => {
    assert.deepEqual(nodeLag("n1", { ...report([]), podResourceVersion: "9", namespaceResourceVersion: "4" }, [], rv), [
      'node "n1" has applied pods up to resourceVersion 9 (3 pods), not 10 (3 pods)',
      'node "n1" has applied namespaces up to resourceVersion 4 (4 namespaces), not 5 (4 namespaces)',
    ]);
  });

  test("a node that still knows a pod deleted before the start lags, though it saw the newest surviving one", () => {
    assert.deepEqual(nodeLag("n1", { ...report([]), podResourceVersion: "12", pods: 4 }, [], rv), ['node "n1" has applied pods up to resourceVersion 12 (4 pods), not 10 (3 pods)']);
  });

  test("a node past the list's resourceVersion caught up, whatever it counts since", () => {
    assert.deepEqual(nodeLag("n1", { ...report([]), podResourceVersion: "25", pods: 7 }, [], rv), []);
  });

  test("a node whose policy map is full lags, naming the map and the endpoints failed closed; one whose report could not list its policies lags with that alone", () => {
    const full = { ...report([{ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 2 }]), mapFull: { map: "pal_policy", needed: 9, capacity: 8, failedClosed: ["x/a"] } };
    assert.deepEqual(nodeLag("n1", full, [netpol("u1", 2)], rv), ['node "n1" cannot program every endpoint: map pal_policy needs 9 entries, its capacity is 8; 1 endpoints fail closed (x/a)']);
    assert.deepEqual(nodeLag("n1", { ...report([]), overflow: { policies: 90_000 } }, [netpol("u1", 2)], rv), [
      'node "n1" applied 90000 policies but its report is too large to list them (over 1000000 bytes compressed)',
    ]);
  });
});
