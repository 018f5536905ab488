import assert from "node:assert/strict";
import { test } from "node:test";
import type { AnyPolicy, PolicyType } from "./api-types.ts";
import { formatCidr } from "./ip.ts";
import { buildWorld } from "./normalize.ts";
import { ipBlockOf, isSelectorPeer, NO_EXCEPT, NO_PREFIXES, normalizePolicy } from "./normalized-policy.ts";
import type { NamedPortRef, PortRange, SelectorPeer } from "./normalized-policy.ts";
import { PolicyError } from "./validate.ts";

const np = (spec: unknown): AnyPolicy => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "p", namespace: "x" }, spec }) as AnyPolicy;
const ebpf = (spec: unknown): AnyPolicy => ({ apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name: "e", namespace: "x" }, spec }) as AnyPolicy;

test("defaults: policy types from the rules, Allow, Enforce, TCP, every port", () => {
  const policy = normalizePolicy(np({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ ports: [{ port: 80 }, {}] }], egress: [{}] }));
  assert.equal(policy.key, "NetworkPolicy/x/p");
  assert.deepEqual(policy.types, ["Ingress", "Egress"]);
  assert.equal(policy.mode, "Enforce");
  assert.deepEqual(policy.selector, { matchLabels: { app: "db" } });
  assert.deepEqual(
    policy.rules.map((r) => [r.direction, r.index, r.action, r.peers, r.ports]),
    [
      ["Ingress", 0, "Allow", undefined, { numeric: [{ protocol: 6, lo: 80, hi: 80, prefixes: [{ port: 80, prefixLen: 16 }] }, { protocol: 6, lo: 0, hi: 65535, prefixes: [{ port: 0, prefixLen: 0 }] }], named: [] }],
      ["Egress", 0, "Allow", undefined, undefined],
    ],
  );
  assert.deepEqual(normalizePolicy(np({ podSelector: {}, egress: [] })).types, ["Ingress"]);
});

test("only the listed directions' rules count; EBPFNetworkPolicy actions and mode", () => {
  const policy = normalizePolicy(ebpf({ selector: {}, policyTypes: ["Egress"], mode: "Audit", ingress: [{}], egress: [{ action: "Deny", ports: [{ protocol: "UDP", port: "dns" }] }] }));
  assert.equal(policy.mode, "Audit");
  assert.deepEqual(policy.rules.map((r) => [r.direction, r.action, r.ports?.named]), [["Egress", "Deny", [{ name: "dns", protocol: "UDP" }]]]);
  assert.equal(normalizePolicy(np({ podSelector: {}, ingress: [{ action: "Deny" }] })).rules[0]?.action, "Allow", "a NetworkPolicy rule always allows");
});

test("ipBlocks parsed, every cidr and except collected once by canonical text; ranges cut into prefixes", () => {
  const policy = normalizePolicy(
    np({
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: "10.9.9.9/8", except: ["10.1.0.0/16"] } }, { ipBlock: { cidr: "10.0.0.0/8" } }], ports: [{ port: 8000, endPort: 8004 }] }],
    }),
  );
  assert.deepEqual(policy.prefixes.texts, ["10.0.0.0/8", "10.1.0.0/16"]);
  assert.deepEqual(policy.prefixes.cidrs.map(formatCidr), policy.prefixes.texts);
  const [withExcept, bare] = (policy.rules[0]?.peers ?? []).map((peer) => (isSelectorPeer(peer) ? undefined : ipBlockOf(peer)));
  assert.deepEqual(withExcept && [formatCidr(withExcept.cidr), ...withExcept.except.map(formatCidr)], ["10.0.0.0/8", "10.1.0.0/16"]);
  assert.deepEqual(bare && [formatCidr(bare.cidr), bare.except], ["10.0.0.0/8", NO_EXCEPT]);
  assert.equal(policy.rules[0]?.peers?.[1], policy.prefixes.cidrs[0], "a block without excepts is its CIDR, the one the prefixes hold");
  assert.deepEqual(policy.rules[0]?.ports?.numeric[0]?.prefixes, [{ port: 8000, prefixLen: 14 }, { port: 8004, prefixLen: 16 }]);
});

test("a policy without ipBlocks shares the empty prefixes, which cannot be changed", () => {
  const policies = [np({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }), ebpf({ selector: {}, egress: [{}] })].map(normalizePolicy);
  for (const policy of policies) assert.equal(policy.prefixes, NO_PREFIXES);
  assert.deepEqual(NO_PREFIXES, { texts: [], cidrs: [] });
  assert.throws(() => (NO_PREFIXES.texts as string[]).push("10.0.0.0/8"), TypeError);
});

test("rules and policies with equal ports and directions share them, frozen", () => {
  const spec = { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ ports: [{ port: 80 }, { port: "http" }] }] };
  const [a, b] = [np(spec), ebpf({ ...spec, selector: {}, egress: [{ ports: [{ port: 80 }, { port: "http" }] }], policyTypes: ["Ingress", "Egress"] })].map(normalizePolicy);
  const ports = a?.rules[0]?.ports;
  assert.ok(ports !== undefined);
  assert.equal(b?.rules[0]?.ports, ports);
  assert.equal(b?.rules[1]?.ports, ports, "of another direction too");
  assert.equal(normalizePolicy(np({ podSelector: {}, egress: [] })).types, a?.types);
  assert.notEqual(b?.types, a?.types);
  assert.throws(() => ports.numeric.push(ports.numeric[0] as PortRange), TypeError);
  assert.throws(() => ((ports.numeric[0] as PortRange).lo = 1), TypeError);
  assert.throws(() => ((ports.named[0] as NamedPortRef).name = "web"), TypeError);
  assert.throws(() => (a?.types as PolicyType[]).push("Egress"), TypeError);
  assert.deepEqual(normalizePolicy(np({ podSelector: {}, ingress: [{ ports: [{ port: 81 }] }] })).rules[0]?.ports?.numeric[0]?.lo, 81, "other ports are not these");
});

test("policies and rules with equal selectors share frozen copies; the specs given stay their own", () => {
  const spec = () => ({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["web"] }] } }] }] });
  const given = np(spec());
  const [a, b] = [normalizePolicy(given), normalizePolicy(np(spec()))];
  assert.equal(a.selector, b.selector);
  assert.equal(a.rules[0]?.peers?.[0], b.rules[0]?.peers?.[0]);
  assert.deepEqual(a.rules[0]?.peers?.[0], { podSelector: spec().ingress[0]?.from[0]?.podSelector, namespaceSelector: undefined });
  assert.throws(() => ((a.selector.matchLabels as Record<string, string>).app = "web"), TypeError);
  const peer = a.rules[0]?.peers?.[0] as SelectorPeer;
  assert.throws(() => (peer.podSelector?.matchExpressions?.[0]?.values as string[]).push("api"), TypeError);
  assert.ok(!Object.isFrozen((given.spec as { podSelector: object }).podSelector), "the spec given is not frozen");
  const withNamespaces = normalizePolicy(np({ ...spec(), ingress: [{ from: [{ ...spec().ingress[0]?.from[0], namespaceSelector: {} }] }] }));
  assert.notEqual(withNamespaces.rules[0]?.peers?.[0], peer, "a peer with a namespace selector is another");
});

test("a policy that skipped validation gets the PolicyError validation would have given it", () => {
  const bad = np({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/33" } }] }] });
  const { errors } = buildWorld([bad]);
  assert.throws(
    () => normalizePolicy(bad),
    (e: unknown) => e instanceof PolicyError && e.field === "spec.ingress[0].from[0].ipBlock.cidr" && e.message === errors[0]?.message,
  );
});
