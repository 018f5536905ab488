import assert from "node:assert/strict";
import { test } from "node:test";
import { podAddress, podNetns, ProbeTargetError } from "./pod-network.ts";

test("a pod's network namespace is the one its runtime recorded on it, and a pod without one is refused", () => {
  const pod = { metadata: { namespace: "x", name: "a", uid: "0123456789abcdef", annotations: { "palisade.dev/sandbox-netns": "pal1-12-01234567" } } };
  assert.equal(podNetns(pod), "pal1-12-01234567");
  assert.throws(() => podNetns({ metadata: { namespace: "x", name: "a" } }), (e: unknown) => {
    return e instanceof ProbeTargetError && e.message.startsWith('Cannot probe from pod "x/a": metadata.annotations has no "palisade.dev/sandbox-netns"');
  });
});

test("podAddress picks the address of the family asked for", () => {
  const pod = { status: { podIPs: [{ ip: "10.244.1.2" }, { ip: "fd00::2" }] } };
  assert.equal(podAddress(pod, "ipv4"), "10.244.1.2");
  assert.equal(podAddress(pod, "ipv6"), "fd00::2");
  assert.equal(podAddress({ status: { podIP: "10.0.0.1" } }, "ipv4"), "10.0.0.1");
  assert.equal(podAddress({ status: { podIP: "10.0.0.1" } }, "ipv6"), undefined);
});
