import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NodeReportError, parseNodeReport, reportedNodeName } from "./node-report.ts";

function configMap(name: string, text: string | undefined) {
  return { metadata: { name, namespace: "palisade-system" }, ...(text === undefined ? {} : { data: { "report.json": text } }) };
}

describe("reportedNodeName", () => {
  test("is the name after the prefix, and undefined for other ConfigMaps", () => {
    assert.equal(reportedNodeName("palisade-node-palisade-node-1"), "palisade-node-1");
    assert.equal(reportedNodeName("palisade-node-"), undefined);
    assert.equal(reportedNodeName("kube-root-ca.crt"), undefined);
  });
});

describe("parseNodeReport", () => {
  test("reads the node and its policy generations, ignoring other fields", () => {
    const text = JSON.stringify({ node: "n1", appliedAt: "t", endpoints: 3, policies: [{ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 4 }] });
    assert.deepEqual(parseNodeReport(configMap("palisade-node-n1", text)), { node: "n1", policies: [{ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 4 }] });
  });

  test("names the ConfigMap and the field of a malformed report", () => {
    const cases: [string | undefined, RegExp][] = [
      [undefined, /^Cannot read node report "palisade-system\/palisade-node-n1": data\["report\.json"\] is missing$/],
      ["{", /data\["report\.json"\] is not JSON$/],
      ["{}", /policies is not a list$/],
      ['{"policies":[{"kind":"EBPFNetworkPolicy","namespace":"x","name":"p","uid":"u1","generation":"1"}]}', /policies\[0\] needs kind, namespace, name, uid \(strings\) and generation \(an integer\)$/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseNodeReport(configMap("palisade-node-n1", text)), (e: unknown) => e instanceof NodeReportError && message.test(e.message));
    }
  });
});
