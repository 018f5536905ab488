import assert from "node:assert/strict";
import { test } from "node:test";
import { podAddress, podNetns, ProbeTargetError } from "./pod-network.ts";

test("a pod's network namespace is the one its node's runtime names, and a node without one is refused", () => {
  const pod = { metadata: { namespace: "x", name: "a", uid: "0123456789abcdef" }, spec: { nodeName: "n12", containers: [] } };
  const sandboxNetns = (node: string, uid: string): string | undefined => (node === "n12" ? `ns-${uid.slice(0, 4)}` : undefined);
  assert.equal(podNetns(pod, sandboxNetns), "ns-0123");
  assert.throws(() => podNetns({ ...pod, spec: { nodeName: "worker-1", containers: [] } }, sandboxNetns), (e: unknown) => {
    return e instanceof ProbeTargetError && e.message === 'Cannot probe from pod "x/a": spec.nodeName "worker-1" is not a dev cluster node';
  });
});

test("podAddress picks the address of the family asked for", () => {
  const pod = { status: { podIPs: [{ ip: "10.244.1.2" }, { ip: "fd00::2" }] } };
  assert.equal(podAddress(pod, "ipv4"), "10.244.1.2");
  assert.equal(podAddress(pod, "ipv6"), "fd00::2");
  assert.equal(podAddress({ status: { podIP: "10.0.0.1" } }, "ipv4"), "10.0.0.1");
  assert.equal(podAddress({ status: { podIP: "10.0.0.1" } }, "ipv6"), undefined);
});
