import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NodeReportError, parseNodeReport, reportConfigMapName, reportedNodeName, type NodeReport } from "./node-report.ts";

function configMap(name: string, text: string | undefined) {
  return { metadata: { name, namespace: "palisade-system" }, ...(text === undefined ? {} : { data: { "report.json": text } }) };
}

const REPORT: NodeReport = {
  node: "n1",
  appliedAt: "2026-11-26T10:00:00.000Z",
  policies: [{ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 4 }],
  endpoints: 3,
  podResourceVersion: "120",
  namespaceResourceVersion: "80",
  pods: 9,
  namespaces: 5,
};

function withField(field: string, value: unknown): string {
  return JSON.stringify({ ...REPORT, [field]: value });
}

describe("reportedNodeName", () => {
  test("is the name after the prefix, and undefined for other ConfigMaps", () => {
    assert.equal(reportedNodeName("palisade-node-palisade-node-1"), "palisade-node-1");
    assert.equal(reportedNodeName(reportConfigMapName("worker-1")), "worker-1");
    assert.equal(reportedNodeName("palisade-node-"), undefined);
    assert.equal(reportedNodeName("kube-root-ca.crt"), undefined);
  });
});

describe("parseNodeReport", () => {
  test("reads back every field of what the agent writes", () => {
    assert.deepEqual(parseNodeReport(configMap("palisade-node-n1", JSON.stringify(REPORT))), REPORT);
  });

  test("names the ConfigMap and the field of a malformed report", () => {
    const cases: [string, string | undefined, RegExp][] = [
      ["kube-root-ca.crt", JSON.stringify(REPORT), /^Cannot read node report "palisade-system\/kube-root-ca\.crt": metadata\.name does not start with "palisade-node-"$/],
      ["palisade-node-n1", undefined, /^Cannot read node report "palisade-system\/palisade-node-n1": data\["report\.json"\] is missing$/],
      ["palisade-node-n1", "{", /data\["report\.json"\] is not JSON$/],
      ["palisade-node-n2", JSON.stringify(REPORT), /: node "n1" is not "n2", the node its name says$/],
      ["palisade-node-n1", withField("policies", {}), /: policies is not a list$/],
      ["palisade-node-n1", withField("policies", [{ ...REPORT.policies[0], kind: "Pod" }]), /: policies\[0\]\.kind is not NetworkPolicy or EBPFNetworkPolicy$/],
      ["palisade-node-n1", withField("policies", [{ ...REPORT.policies[0], generation: "1" }]), /: policies\[0\] needs namespace, name, uid \(strings\) and generation \(a whole number\)$/],
      ["palisade-node-n1", withField("appliedAt", 5), /: appliedAt is not a string$/],
      ["palisade-node-n1", withField("podResourceVersion", 120), /: podResourceVersion is not a string$/],
      ["palisade-node-n1", withField("endpoints", -1), /: endpoints is not a whole number$/],
      ["palisade-node-n1", withField("pods", undefined), /: pods is not a whole number$/],
      ["palisade-node-n1", withField("namespaces", 1.5), /: namespaces is not a whole number$/],
    ];
    for (const [name, text, message] of cases) {
      assert.throws(() => parseNodeReport(configMap(name, text)), (e: unknown) => e instanceof NodeReportError && message.test(e.message), `${name} ${text}`);
    }
  });
});
