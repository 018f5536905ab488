import assert from "node:assert/strict";
import { test } from "node:test";
import type { NetworkPolicy } from "../policy/index.ts";
import { fillPlaceholders, networkOf, PlaceholderError } from "./ip-placeholders.ts";
import { toEbpfNetworkPolicy } from "./to-ebpfnp.ts";

test("networkOf masks IPv4 and IPv6 addresses, as upstream's makeLargeCIDRForIP does for /4", () => {
  assert.equal(networkOf("10.244.1.12", 4), "0.0.0.0/4");
  assert.equal(networkOf("10.244.1.12", 24), "10.244.1.0/24");
  assert.equal(networkOf("10.244.1.12", 32), "10.244.1.12/32");
  assert.equal(networkOf("fd00:10:244:1::c", 4), "f000::/4");
  assert.equal(networkOf("fd00:10:244:1::c", 128), "fd00:10:244:1::c/128");
});

const policy: NetworkPolicy = {
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: "p", namespace: "x" },
  spec: { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "@x/b/4", except: ["@x/b"] } }, { podSelector: {} }] }] },
};
const addresses = new Map([["x/b", ["10.244.2.11", "fd00:10:244:2::b"]]]);

test("a placeholder peer becomes one peer per family of the run; other peers stay", () => {
  const filled = fillPlaceholders(policy, ["ipv4", "ipv6"], addresses);
  assert.deepEqual(filled.spec.egress?.[0]?.to, [
    { ipBlock: { cidr: "0.0.0.0/4", except: ["10.244.2.11/32"] } },
    { ipBlock: { cidr: "f000::/4", except: ["fd00:10:244:2::b/128"] } },
    { podSelector: {} },
  ]);
  assert.throws(() => fillPlaceholders(policy, ["ipv6"], new Map([["x/b", ["10.244.2.11"]]])), PlaceholderError);
});

test("the EBPFNetworkPolicy rewrite keeps selector, policyTypes and rules", () => {
  const rewritten = toEbpfNetworkPolicy(policy);
  assert.equal(rewritten.kind, "EBPFNetworkPolicy");
  assert.deepEqual(rewritten.spec, { selector: {}, policyTypes: ["Egress"], egress: policy.spec.egress });
});
