import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import {
  encodeNodeReport,
  findApplied,
  MAX_REPORT_BYTES,
  NodeReportError,
  parseNodeReport,
  REPORT_KEY,
  reportConfigMapName,
  reportedNodeName,
  reportProblem,
  type NodeReport,
} from "./node-report.ts";
import { incompressiblePolicies, realisticPolicies } from "../../test/lib/report-policies.ts";

function configMap(name: string, report: NodeReport): { metadata: { name: string; namespace: string }; binaryData: Record<string, string> } {
  return { metadata: { name, namespace: "palisade-system" }, binaryData: { [REPORT_KEY]: encodeNodeReport(report).bytes.toString("base64") } };
}

function rawConfigMap(name: string, json: unknown) {
  return { metadata: { name, namespace: "palisade-system" }, binaryData: { [REPORT_KEY]: gzipSync(JSON.stringify(json)).toString("base64") } };
}

const UID = "0f8e2c1a-5b7d-4e21-9c3f-1a2b3c4d5e6f";

const REPORT: NodeReport = {
  node: "n1",
  appliedAt: "2026-11-26T10:00:00.000Z",
  policies: [
    { kind: "EBPFNetworkPolicy", namespace: "x", name: "p", uid: UID, generation: 2 },
    { kind: "NetworkPolicy", namespace: "1", name: "7", uid: "u2", generation: 1 },
    { kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 4 },
  ],
  endpoints: 3,
  podResourceVersion: "120",
  namespaceResourceVersion: "80",
  pods: 9,
  namespaces: 5,
};

/** A report in its stored form, with one field replaced. */
function encodedWith(field: string, value: unknown): unknown {
  return { ...REPORT, policies: { NetworkPolicy: { x: { p: [4, "u1"] } } }, [field]: value };
}

describe("reportedNodeName", () => {
  test("is the name after the prefix, and undefined for other ConfigMaps", () => {
    assert.equal(reportedNodeName("palisade-node-palisade-node-1"), "palisade-node-1");
    assert.equal(reportedNodeName(reportConfigMapName("worker-1")), "worker-1");
    assert.equal(reportedNodeName("palisade-node-"), undefined);
    assert.equal(reportedNodeName("kube-root-ca.crt"), undefined);
  });
});

describe("encodeNodeReport and parseNodeReport", () => {
  test("read back every field, uids as their 8-character prefix, sorted by kind, namespace and name (numeric names too)", () => {
    const read = parseNodeReport(configMap("palisade-node-n1", REPORT));
    const expected = [...REPORT.policies].sort((a, b) => a.kind.localeCompare(b.kind) || a.namespace.localeCompare(b.namespace)).map((p) => ({ ...p, uid: p.uid.slice(0, 8) }));
    assert.deepEqual(read, { ...REPORT, policies: expected });
    const full: NodeReport = { ...REPORT, mapFull: { map: "pal_policy", needed: 10, capacity: 8, failedClosed: ["x/a"] } };
    assert.deepEqual(parseNodeReport(configMap("palisade-node-n1", full)).mapFull, full.mapFull);
  });

  test("findApplied matches kind, namespace, name and the uid, full or as its prefix, and not a predecessor's uid", () => {
    const read = parseNodeReport(configMap("palisade-node-n1", REPORT));
    assert.equal(findApplied(read, { kind: "EBPFNetworkPolicy", namespace: "x", name: "p", uid: UID })?.generation, 2);
    assert.equal(findApplied(REPORT, { kind: "EBPFNetworkPolicy", namespace: "x", name: "p", uid: UID })?.generation, 2);
    assert.equal(findApplied(read, { kind: "EBPFNetworkPolicy", namespace: "x", name: "p", uid: randomUUID() }), undefined);
    assert.equal(findApplied(read, { kind: "NetworkPolicy", namespace: "x", name: "q", uid: "u1" }), undefined);
  });

  test("fit 50k policies of realistic names and random uids under the limit, below 1 MiB", () => {
    const policies = realisticPolicies(50_000);
    const { bytes, overflow } = encodeNodeReport({ ...REPORT, policies });
    assert.equal(overflow, false);
    // About 615 kB (12 bytes a policy) when measured.
    assert.ok(bytes.length < MAX_REPORT_BYTES, `${bytes.length} bytes for 50k policies`);
    const read = parseNodeReport({ metadata: { name: "palisade-node-n1", namespace: "palisade-system" }, binaryData: { [REPORT_KEY]: bytes.toString("base64") } });
    assert.equal(read.policies.length, 50_000);
    for (const p of policies.slice(0, 100)) assert.equal(findApplied(read, p)?.generation, p.generation);
  });

  test("leave the list out, saying how many it had, when even the compact form is over the limit", () => {
    const policies = incompressiblePolicies(30_000);
    const { bytes, overflow } = encodeNodeReport({ ...REPORT, policies });
    assert.equal(overflow, true);
    assert.ok(bytes.length < MAX_REPORT_BYTES);
    const read = parseNodeReport({ metadata: { name: "palisade-node-n1", namespace: "palisade-system" }, binaryData: { [REPORT_KEY]: bytes.toString("base64") } });
    assert.deepEqual({ policies: read.policies, overflow: read.overflow }, { policies: [], overflow: { policies: 30_000 } });
    assert.match(reportProblem(read) ?? "", /^node "n1" applied 30000 policies but its report is too large to list them/);
  });

  test("reportProblem names the node, the map, what it needs and holds, and the endpoints failed closed", () => {
    assert.equal(reportProblem(REPORT), undefined);
    const failedClosed = ["x/a", "x/b", "x/c", "x/d", "x/e", "x/f", "x/g"];
    assert.equal(
      reportProblem({ ...REPORT, mapFull: { map: "pal_policy", needed: 12, capacity: 8, failedClosed } }),
      'node "n1" cannot program every endpoint: map pal_policy needs 12 entries, its capacity is 8; 7 endpoints fail closed (x/a, x/b, x/c, x/d, x/e, and 2 more)',
    );
  });

  test("name the ConfigMap and the field of a malformed report", () => {
    const cm = (name: string, json: unknown) => rawConfigMap(name, json);
    const cases: [object, RegExp][] = [
      [cm("kube-root-ca.crt", encodedWith("node", "n1")), /^Cannot read node report "palisade-system\/kube-root-ca\.crt": metadata\.name does not start with "palisade-node-"$/],
      [{ metadata: { name: "palisade-node-n1", namespace: "palisade-system" }, data: { "report.json": "{}" } }, /^Cannot read node report "palisade-system\/palisade-node-n1": binaryData\["report\.json\.gz"\] is missing$/],
      [{ metadata: { name: "palisade-node-n1", namespace: "palisade-system" }, binaryData: { [REPORT_KEY]: Buffer.from("{}").toString("base64") } }, /binaryData\["report\.json\.gz"\] is not gzip-compressed JSON$/],
      [cm("palisade-node-n1", [1]), /binaryData\["report\.json\.gz"\] is not a JSON object$/],
      [cm("palisade-node-n2", encodedWith("node", "n1")), /: node "n1" is not "n2", the node its name says$/],
      [cm("palisade-node-n1", encodedWith("policies", [])), /: policies is not an object of kinds$/],
      [cm("palisade-node-n1", encodedWith("policies", { Pod: {} })), /: policies\["Pod"\] is not NetworkPolicy or EBPFNetworkPolicy$/],
      [cm("palisade-node-n1", encodedWith("policies", { NetworkPolicy: { x: [] } })), /: policies\["NetworkPolicy"\]\["x"\] is not an object of names$/],
      [cm("palisade-node-n1", encodedWith("policies", { NetworkPolicy: { x: { p: ["1", "u"] } } })), /: policies\["NetworkPolicy"\]\["x"\]\["p"\] is not \[generation \(a whole number\), uid \(a string\)\]$/],
      [cm("palisade-node-n1", encodedWith("appliedAt", 5)), /: appliedAt is not a string$/],
      [cm("palisade-node-n1", encodedWith("podResourceVersion", 120)), /: podResourceVersion is not a string$/],
      [cm("palisade-node-n1", encodedWith("endpoints", -1)), /: endpoints is not a whole number$/],
      [cm("palisade-node-n1", encodedWith("pods", undefined)), /: pods is not a whole number$/],
      [cm("palisade-node-n1", encodedWith("namespaces", 1.5)), /: namespaces is not a whole number$/],
      [cm("palisade-node-n1", encodedWith("overflow", { policies: "many" })), /: overflow\.policies is not a whole number$/],
      [cm("palisade-node-n1", encodedWith("mapFull", { map: "pal_policy", needed: 2 })), /: mapFull needs map \(a string\), needed and capacity \(whole numbers\)$/],
      [cm("palisade-node-n1", encodedWith("mapFull", { map: "pal_policy", needed: 2, capacity: 1, failedClosed: [1] })), /: mapFull\.failedClosed is not a list of pod names$/],
    ];
    for (const [configMap, message] of cases) {
      assert.throws(() => parseNodeReport(configMap), (e: unknown) => e instanceof NodeReportError && message.test(e.message), JSON.stringify(configMap).slice(0, 200));
    }
  });
});
