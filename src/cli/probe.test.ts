import assert from "node:assert/strict";
import { test } from "node:test";
import { parseProbeArgs, podAddress, podNetns } from "./probe.ts";
import { UsageError } from "./usage-error.ts";

test("a dev pod's network namespace is pal-<node index>-<uid prefix>", () => {
  const pod = { metadata: { namespace: "x", name: "a", uid: "0123456789abcdef" }, spec: { nodeName: "palisade-node-12", containers: [] } };
  assert.equal(podNetns(pod), "pal-12-01234567");
  assert.throws(() => podNetns({ ...pod, spec: { nodeName: "worker-1", containers: [] } }), /spec.nodeName "worker-1" is not a dev cluster node/);
});

test("podAddress picks the address of the family asked for", () => {
  const pod = { status: { podIPs: [{ ip: "10.244.1.2" }, { ip: "fd00::2" }] } };
  assert.equal(podAddress(pod, "ipv4"), "10.244.1.2");
  assert.equal(podAddress(pod, "ipv6"), "fd00::2");
  assert.equal(podAddress({ status: { podIP: "10.0.0.1" } }, "ipv6"), undefined);
});

test("probe flags are parsed and checked", () => {
  assert.deepEqual(parseProbeArgs(["--from", "x/a", "--to", "y/b", "--port", "80", "--protocol", "udp", "-o", "json"]), {
    port: 80, protocol: "UDP", family: "ipv4", timeoutMs: 1000, output: "json", from: "x/a", to: "y/b",
  });
  assert.deepEqual(parseProbeArgs(["matrix", "--namespaces", "x,y", "--port", "8080"]).matrix, { namespaces: ["x", "y"] });
  assert.throws(() => parseProbeArgs(["--from", "x/a", "--to", "y/b", "--port", "70000"]), UsageError);
  assert.equal(parseProbeArgs(["--from", "x/a", "--to", "y/b", "--port", "80", "--protocol", "sctp"]).protocol, "SCTP");
  assert.equal(parseProbeArgs(["matrix", "--namespaces", "x", "--port", "81", "--protocol", "SCTP"]).protocol, "SCTP");
  assert.throws(() => parseProbeArgs(["--from", "x/a", "--to", "y/b", "--port", "80", "--protocol", "ICMP"]), /--protocol "ICMP" is not TCP, UDP or SCTP/);
  assert.throws(() => parseProbeArgs(["matrix", "--port", "80"]), /--namespaces X,Y is required/);
  assert.throws(() => parseProbeArgs(["matrix", "--namespaces", "x", "--port", "80", "-o", "text"]), /-o "text" is not table or json/);
});
