import assert from "node:assert/strict";
import { test } from "node:test";
import { buildWorld } from "../../src/policy/index.ts";
import { FULL_SCALE, MAX_CIDRS_PER_POLICY, scaleSize, scaleWorld } from "./scale-world.ts";

const NODE = "palisade-node-1";
const cidrsOf = (spec: unknown): string[] => [...JSON.stringify(spec).matchAll(/"cidr":"([^"]+)"/g)].map((m) => m[1] as string);

test("the same seed gives the same world, another seed another", () => {
  const size = scaleSize(1 / 100);
  assert.deepEqual(scaleWorld(size, { seed: 7, realNode: NODE }), scaleWorld(size, { seed: 7, realNode: NODE }));
  assert.notDeepEqual(scaleWorld(size, { seed: 8, realNode: NODE }).pods, scaleWorld(size, { seed: 7, realNode: NODE }).pods);
});

test("a world has the objects its size says, every one valid for the policy layer", () => {
  const size = scaleSize(1 / 20);
  const world = scaleWorld(size, { seed: 1, realNode: NODE });
  assert.equal(world.namespaces.length, size.namespaces);
  assert.equal(world.nodes.length, size.fakeNodes);
  assert.equal(world.pods.filter((p) => p.real).length, size.realPods);
  assert.equal(world.pods.filter((p) => !p.real).length, size.fakePods);
  assert.equal(world.policies.length, size.policies);
  assert.deepEqual([...new Set(world.policies.map((p) => p.kind))].sort(), ["EBPFNetworkPolicy", "NetworkPolicy"]);
  assert.ok(world.policies.some((p) => JSON.stringify(p.spec).includes('"action":"Deny"')), "a few Deny rules");
  assert.ok(world.policies.some((p) => JSON.stringify(p.spec).includes('"endPort"')), "port ranges");
  assert.ok(world.policies.some((p) => JSON.stringify(p.spec).includes('"port":"http"')), "named ports");
  const pods = world.pods.map((p, i) => ({ ...p.object, status: { phase: "Running", podIPs: (p.real ? [`10.244.1.${i + 2}`] : p.ips).map((ip) => ({ ip })) } }));
  assert.deepEqual(buildWorld([...world.namespaces, ...pods, ...world.policies]).errors.map((e) => e.message), []);
});

test("the CIDRs add up to the size, at most 10k per object, none of them a pod's or node's address", () => {
  const world = scaleWorld(FULL_SCALE, { seed: 1, realNode: NODE });
  const perPolicy = world.policies.map((p) => cidrsOf(p.spec));
  assert.equal(perPolicy.reduce((sum, c) => sum + c.length, 0), FULL_SCALE.cidrs);
  assert.ok(Math.max(...perPolicy.map((c) => c.length)) <= MAX_CIDRS_PER_POLICY);
  const all = perPolicy.flat();
  assert.equal(new Set(all).size, all.length, "distinct CIDRs");
  const addresses = [...world.pods.flatMap((p) => p.ips), ...world.nodes.map((n) => n.internalIP)];
  assert.equal(new Set(addresses).size, addresses.length, "distinct addresses");
  assert.ok(all.every((cidr) => cidr.startsWith("172.")) && addresses.every((ip) => ip.startsWith("198.1")));
});
