import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { namespaceFromObject, podFromObject, policyFromObject } from "./convert.ts";

describe("convert", () => {
  it("adds the namespace name label", () => {
    const converted = namespaceFromObject({ apiVersion: "v1", kind: "Namespace", metadata: { name: "x", labels: { team: "a" } }, spec: { finalizers: ["kubernetes"] } });
    assert.deepEqual(converted, { ok: true, value: { name: "x", labels: { team: "a", "kubernetes.io/metadata.name": "x" } } });
  });

  it("reads pod IPs, node and named ports from an API pod", () => {
    const converted = podFromObject({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "a", namespace: "x", labels: { app: "web" }, resourceVersion: "12", uid: "u" },
      spec: { nodeName: "node-1", containers: [{ name: "c", image: "i", ports: [{ name: "http", containerPort: 80 }] }] },
      status: { phase: "Running", podIP: "10.0.0.1", podIPs: [{ ip: "10.0.0.1" }, { ip: "fd00::0001" }] },
    });
    assert.ok(converted.ok);
    assert.deepEqual(converted.value.pod, {
      namespace: "x",
      name: "a",
      labels: { app: "web" },
      ips: ["10.0.0.1", "fd00::1"],
      namedPorts: [{ name: "http", port: 80, protocol: "TCP" }],
      nodeName: "node-1",
    });
    assert.deepEqual(converted.value.hostIPs, []);
  });

  it("gives a host-network pod's IPs to the host", () => {
    const converted = podFromObject({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "h", namespace: "kube-system" },
      spec: { hostNetwork: true, containers: [{ name: "c" }] },
      status: { podIPs: [{ ip: "192.0.2.2" }] },
    });
    assert.ok(converted.ok);
    assert.deepEqual(converted.value.pod.ips, []);
    assert.deepEqual(converted.value.hostIPs, ["192.0.2.2"]);
  });

  it("keeps the generation of a valid policy", () => {
    const converted = policyFromObject({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "p", namespace: "x", generation: 3 },
      spec: { podSelector: {}, policyTypes: ["Ingress"] },
    });
    assert.ok(converted.ok);
    assert.equal(converted.value.metadata.generation, 3);
  });

  it("names the object and field of an invalid policy", () => {
    const converted = policyFromObject({
      apiVersion: "palisade.dev/v1alpha1",
      kind: "EBPFNetworkPolicy",
      metadata: { name: "bad", namespace: "x" },
      spec: { selector: {}, ingress: [{ ports: [{ protocol: "TCP", port: 80, endPort: 70 }] }] },
    });
    assert.equal(converted.ok, false);
    assert.ok(!converted.ok);
    assert.match(converted.errors[0]?.message ?? "", /EBPFNetworkPolicy "x\/bad".*spec\.ingress\[0\]\.ports\[0\]\.endPort/);
  });
});
