import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  canonicalNamedPorts,
  cidrIdentity,
  cidrIdentityKey,
  describeIdentity,
  hostIdentity,
  identityKey,
  identityKeyFields,
  IdentityKeyError,
  inCanonicalOrder,
  podIdentity,
  sameLabels,
} from "./identity-key.ts";
import { cidrOf, formatCidr, parseCidr } from "./ip.ts";
import type { NamedPort } from "./world.ts";

const ports = canonicalNamedPorts([
  { name: "web", port: 80, protocol: "TCP" },
  { name: "dns", port: 53, protocol: "UDP" },
  { name: "dns", port: 53, protocol: "TCP" },
]);

test("keys are the JSON every node and PalisadeIdentity object agrees on", () => {
  const pod = podIdentity("shop", { team: "t", "kubernetes.io/metadata.name": "shop" }, { tier: "be", app: "api" }, ports, parseCidr("10.0.0.0/8"));
  assert.equal(
    identityKey(pod),
    '["pod","shop",[["kubernetes.io/metadata.name","shop"],["team","t"]],[["app","api"],["tier","be"]],' +
      '[{"name":"dns","port":53,"protocol":"TCP"},{"name":"dns","port":53,"protocol":"UDP"},{"name":"web","port":80,"protocol":"TCP"}],"10.0.0.0/8"]',
  );
  assert.equal(identityKey(hostIdentity(undefined)), '["host",null]');
  assert.equal(identityKey(hostIdentity(parseCidr("fd00::/8"))), '["host","fd00::/8"]');
  assert.equal(identityKey(cidrIdentity(parseCidr("10.1.2.3/16"))), '["cidr","10.1.0.0/16"]');
});

test("identityKeyFields reads back what identityKey wrote", () => {
  const pod = podIdentity("shop", { a: "1" }, { app: "api" }, ports, undefined);
  assert.deepEqual(identityKeyFields(identityKey(pod)), { kind: "pod", namespace: "shop", namespaceLabels: { a: "1" }, labels: { app: "api" }, namedPorts: ports });
  assert.deepEqual(identityKeyFields(identityKey(hostIdentity(parseCidr("10.0.0.0/8")))), { kind: "host", cidr: "10.0.0.0/8" });
  assert.deepEqual(identityKeyFields(identityKey(hostIdentity(undefined))), { kind: "host" });
  assert.deepEqual(identityKeyFields(identityKey(cidrIdentity(parseCidr("10.0.0.0/8")))), { kind: "cidr", cidr: "10.0.0.0/8" });
  for (const bad of ["nope", "{}", '["pod"]', '["host",1]', '["cidr",null]', '["pod","x",[["a"]],[],[],null]']) {
    assert.throws(() => identityKeyFields(bad), IdentityKeyError, bad);
  }
});

test("labels compare and key regardless of order; named ports are sorted by name, protocol, port", () => {
  assert.ok(sameLabels({ a: "1", b: "2" }, { b: "2", a: "1" }));
  assert.ok(!sameLabels({ a: "1" }, { a: "2" }));
  assert.equal(identityKey(podIdentity("x", {}, { a: "1", b: "2" }, [], undefined)), identityKey(podIdentity("x", {}, { b: "2", a: "1" }, [], undefined)));
  assert.deepEqual(ports.map((p) => `${p.name}/${p.protocol}`), ["dns/TCP", "dns/UDP", "web/TCP"]);
});

test("descriptions say what the identity stands for", () => {
  assert.equal(
    describeIdentity(podIdentity("shop", { team: "t" }, { app: "api" }, [{ name: "web", port: 80, protocol: "TCP" }], parseCidr("10.0.0.0/8"))),
    'pods of namespace "shop" labelled {app=api}, namespace labels {team=t}, named ports [web=80/TCP], cidr class 10.0.0.0/8',
  );
  assert.equal(describeIdentity(hostIdentity(undefined)), "host addresses, no cidr class");
  assert.equal(describeIdentity(cidrIdentity(parseCidr("fd00::/16"))), "cidr fd00::/16");
});

test("inCanonicalOrder: true exactly when canonicalNamedPorts would give the same list, field order included", () => {
  const portArb = fc.record({ name: fc.constantFrom("dns", "web", "Web", "metrics"), port: fc.constantFrom(53, 80, 8080), protocol: fc.constantFrom("TCP", "UDP", "SCTP") }) as fc.Arbitrary<NamedPort>;
  const reordered = portArb.map(({ protocol, port, name }) => ({ protocol, port, name }));
  const withExtra = portArb.map((p) => ({ ...p, containerPort: p.port }));
  const listArb = fc.oneof(fc.array(portArb, { maxLength: 4 }), fc.array(fc.oneof(portArb, reordered, withExtra), { maxLength: 3 }), fc.array(portArb, { maxLength: 4 }).map(canonicalNamedPorts));
  fc.assert(fc.property(listArb, (list) => assert.equal(inCanonicalOrder(list), JSON.stringify(canonicalNamedPorts(list)) === JSON.stringify(list))));
  assert.equal(inCanonicalOrder(ports), true);
  assert.equal(inCanonicalOrder([...ports].reverse()), false);
});

test("cidrIdentityKey: the key of a prefix's identity from its canonical text, as identityKey gives it", () => {
  assert.equal(cidrIdentityKey("10.0.0.0/8"), '["cidr","10.0.0.0/8"]');
  const prefixArb = fc.oneof(
    fc.tuple(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.integer({ min: 0, max: 32 })).map(([value, length]) => cidrOf({ family: 4, value }, length)),
    fc.tuple(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 128 })).map(([value, length]) => cidrOf({ family: 6, value }, length)),
  );
  fc.assert(fc.property(prefixArb, (prefix) => assert.equal(cidrIdentityKey(formatCidr(prefix)), identityKey(cidrIdentity(prefix)))));
});
