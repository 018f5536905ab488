import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { LabelSelector } from "./api-types.ts";
import { IdentitySet } from "./identity-set.ts";
import { cidrContains, parseCidr } from "./ip.ts";
import type { Identity } from "./ipcache-compiler.ts";
import { blockPeer, ipBlockOf, isSelectorPeer } from "./normalized-policy.ts";
import type { NamedPortRef, NormalizedPeer, NormalizedRule } from "./normalized-policy.ts";
import { PeerIndex } from "./peer-index.ts";
import type { IndexedRule } from "./peer-index.ts";
import { matchesSelector } from "./selector.ts";
import type { NamedPort } from "./world.ts";

interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

function rule(namespace: string, peers: Peer[] | undefined, options: { direction?: "Ingress" | "Egress"; named?: NamedPortRef[] } = {}): IndexedRule {
  const normalized: NormalizedRule = {
    direction: options.direction ?? "Ingress",
    index: 0,
    action: "Allow",
    peers: peers?.map(
      (p): NormalizedPeer =>
        p.ipBlock ? blockPeer(parseCidr(p.ipBlock.cidr), (p.ipBlock.except ?? []).map(parseCidr)) : { podSelector: p.podSelector, namespaceSelector: p.namespaceSelector },
    ),
    ports: options.named ? { numeric: [], named: options.named } : undefined,
    tcpStrict: false,
    tcpLimits: undefined,
    http: undefined,
    tls: undefined,
  };
  return { rule: normalized, namespace, identities: new IdentitySet() };
}

function podIdentity(id: number, namespace: string, namespaceLabels: Record<string, string>, podLabels: Record<string, string>, options: { cls?: string; namedPorts?: NamedPort[] } = {}): Identity {
  const cls = options.cls === undefined ? undefined : parseCidr(options.cls);
  return { id, key: `pod-${id}`, kind: "pod", namespace, namespaceLabels, podLabels, namedPorts: options.namedPorts ?? [], cls };
}

function cidrIdentity(id: number, prefix: string): Identity {
  return { id, key: `cidr-${id}`, kind: "cidr", namespace: "", namespaceLabels: {}, podLabels: {}, namedPorts: [], cls: parseCidr(prefix) };
}

function hostIdentity(id: number, cls: string | undefined): Identity {
  return { id, key: `host-${id}`, kind: "host", namespace: "", namespaceLabels: {}, podLabels: {}, namedPorts: [], cls: cls === undefined ? undefined : parseCidr(cls) };
}

/** The spec, brute force: whether a rule targets an identity. */
function targets(indexed: IndexedRule, identity: Identity): boolean {
  const { peers, direction, ports } = indexed.rule;
  if (peers === undefined) {
    const named = direction === "Egress" ? (ports?.named ?? []) : [];
    return identity.kind === "pod" && named.some((ref) => identity.namedPorts.some((p) => p.name === ref.name && p.protocol === ref.protocol));
  }
  return peers.some((peer) => {
    if (!isSelectorPeer(peer)) {
      const cls = identity.cls;
      const { cidr, except } = ipBlockOf(peer);
      return cls !== undefined && cidrContains(cidr, cls) && !except.some((e) => cidrContains(e, cls));
    }
    if (identity.kind !== "pod") return false;
    const inNamespace = peer.namespaceSelector ? matchesSelector(peer.namespaceSelector, identity.namespaceLabels) : identity.namespace === indexed.namespace;
    return inNamespace && (peer.podSelector === undefined || matchesSelector(peer.podSelector, identity.podLabels));
  });
}

const X = { "kubernetes.io/metadata.name": "x", team: "a" };
const Y = { "kubernetes.io/metadata.name": "y", team: "b" };

describe("PeerIndex", () => {
  test("a selector listed by many rules is matched once and shared; it goes with the last rule listing it", () => {
    const index = new PeerIndex<IndexedRule>();
    const changed = new Set<IndexedRule>();
    index.addIdentity(podIdentity(300, "x", X, { app: "web" }), changed);
    index.addIdentity(podIdentity(301, "y", Y, { app: "web" }), changed);
    index.addIdentity(podIdentity(302, "y", Y, { app: "db" }), changed);
    // Equal selectors written with their labels in another order are one.
    const rules = [
      rule("x", [{ namespaceSelector: { matchLabels: { team: "b", "kubernetes.io/metadata.name": "y" } }, podSelector: { matchLabels: { app: "web" } } }]),
      rule("y", [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "y", team: "b" } }, podSelector: { matchLabels: { app: "web" } } }]),
      rule("z", [{ namespaceSelector: { matchLabels: { team: "b", "kubernetes.io/metadata.name": "y" } }, podSelector: { matchLabels: { app: "web" } } }]),
    ];
    for (const r of rules) index.addRule(r);
    assert.equal(index.selectorCount, 1);
    for (const r of rules) assert.deepEqual([...r.identities], [301]);
    // A policy removed while others share its selector: they keep following new identities.
    const [removed, ...kept] = rules as [IndexedRule, ...IndexedRule[]];
    index.removeRule(removed);
    assert.equal(index.selectorCount, 1);
    changed.clear();
    index.addIdentity(podIdentity(303, "y", Y, { app: "web", version: "v2" }), changed);
    assert.deepEqual(new Set(changed), new Set(kept));
    for (const r of kept) assert.deepEqual([...r.identities].sort(), [301, 303]);
    // Rules listing only the selector share its set: one insertion served all of them.
    assert.ok(kept.every((r) => r.identities === kept[0]?.identities));
    for (const r of kept) index.removeRule(r);
    assert.equal(index.selectorCount, 0);
  });

  test("a selector without a namespace selector is of its rule's namespace: the same selector in two namespaces is two", () => {
    const index = new PeerIndex<IndexedRule>();
    const changed = new Set<IndexedRule>();
    index.addIdentity(podIdentity(300, "x", X, { app: "web" }), changed);
    index.addIdentity(podIdentity(301, "y", Y, { app: "web" }), changed);
    const [inX, inY] = [rule("x", [{ podSelector: { matchLabels: { app: "web" } } }]), rule("y", [{ podSelector: { matchLabels: { app: "web" } } }])];
    index.addRule(inX);
    index.addRule(inY);
    assert.equal(index.selectorCount, 2);
    assert.deepEqual([...inX.identities], [300]);
    assert.deepEqual([...inY.identities], [301]);
  });

  test("identities added and removed change exactly the rules matching them", () => {
    const index = new PeerIndex<IndexedRule>();
    const changed = new Set<IndexedRule>();
    const web = rule("x", [{ podSelector: { matchLabels: { app: "web" } } }]);
    const teamB = rule("x", [{ namespaceSelector: { matchLabels: { team: "b" } } }]);
    const block = rule("x", [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }]);
    const named = rule("x", undefined, { direction: "Egress", named: [{ name: "http", protocol: "TCP" }] });
    for (const r of [web, teamB, block, named]) index.addRule(r);
    const first = podIdentity(300, "x", X, { app: "web" }, { cls: "10.2.0.0/16", namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }] });
    index.addIdentity(first, changed);
    assert.deepEqual(new Set(changed), new Set([web, block, named]));
    changed.clear();
    index.addIdentity(podIdentity(301, "y", Y, { app: "web" }, { cls: "10.1.0.0/16" }), changed);
    assert.deepEqual(new Set(changed), new Set([teamB]));
    changed.clear();
    index.removeIdentity(first, changed);
    assert.deepEqual(new Set(changed), new Set([web, block, named]));
    for (const r of [web, block, named]) assert.equal(r.identities.size, 0);
    assert.deepEqual([...teamB.identities], [301]);
    assert.equal(index.identityCount, 1);
  });

  test("ipBlocks: excepts, IPv4 and IPv6, /0, nested classes; host and cidr identities", () => {
    const index = new PeerIndex<IndexedRule>();
    const changed = new Set<IndexedRule>();
    const identities = [
      cidrIdentity(300, "10.0.0.0/8"),
      cidrIdentity(301, "10.1.0.0/16"),
      cidrIdentity(302, "10.1.2.3/32"),
      cidrIdentity(303, "192.0.2.0/24"),
      cidrIdentity(304, "fd00::/64"),
      cidrIdentity(305, "fd00::1/128"),
      hostIdentity(306, "10.1.0.0/16"),
      hostIdentity(307, undefined),
      podIdentity(308, "x", X, {}, { cls: "fd00::/64" }),
    ];
    for (const identity of identities) index.addIdentity(identity, changed);
    const cases: [Peer[], number[]][] = [
      [[{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }], [300]],
      [[{ ipBlock: { cidr: "10.1.0.0/16" } }], [301, 302, 306]],
      [[{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] } }], [303]],
      [[{ ipBlock: { cidr: "0.0.0.0/0" } }], [300, 301, 302, 303, 306]],
      [[{ ipBlock: { cidr: "::/0", except: ["fd00::1/128"] } }], [304, 308]],
      [[{ ipBlock: { cidr: "fd00::/16" } }, { ipBlock: { cidr: "10.1.2.0/24" } }], [302, 304, 305, 308]],
      [[{ ipBlock: { cidr: "172.16.0.0/12" } }], []],
    ];
    for (const [peers, expected] of cases) {
      const r = rule("x", peers);
      index.addRule(r);
      assert.deepEqual([...r.identities].sort(), expected, JSON.stringify(peers));
      // The same answer for identities arriving after the rule.
      const late = rule("x", peers);
      const fresh = new PeerIndex<IndexedRule>();
      fresh.addRule(late);
      for (const identity of identities) fresh.addIdentity(identity, changed);
      assert.deepEqual([...late.identities].sort(), expected, `late: ${JSON.stringify(peers)}`);
    }
  });

  test("every rule targets what the spec says, whatever the order rules and identities come and go in", () => {
    const labelsArb = fc.record({ app: fc.constantFrom("web", "db") }, { requiredKeys: [] });
    const selectorArb = fc.option(
      fc.oneof(fc.record({ matchLabels: labelsArb }), fc.constant<LabelSelector>({ matchExpressions: [{ key: "team", operator: "In", values: ["a"] }] })),
      { nil: undefined },
    );
    const prefixes = ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "::/0", "fd00::/64", "fd00::1/128"];
    const peerArb: fc.Arbitrary<Peer> = fc.oneof(
      fc.record({ podSelector: selectorArb, namespaceSelector: selectorArb }).map((p) => ({ ...(p.podSelector ? { podSelector: p.podSelector } : {}), ...(p.namespaceSelector ? { namespaceSelector: p.namespaceSelector } : {}) })),
      fc.record({ cidr: fc.constantFrom(...prefixes), except: fc.subarray(prefixes) }).map(({ cidr, except }) => ({
        ipBlock: { cidr, except: except.filter((e) => e.includes(":") === cidr.includes(":") && Number(e.split("/")[1]) > Number(cidr.split("/")[1])) },
      })),
    );
    const ruleArb = fc.record({
      namespace: fc.constantFrom("x", "y"),
      peers: fc.option(fc.array(peerArb, { minLength: 1, maxLength: 3 }), { nil: undefined }),
      direction: fc.constantFrom("Ingress" as const, "Egress" as const),
      named: fc.constantFrom<NamedPortRef[]>([], [{ name: "http", protocol: "TCP" }]),
    });
    const identityArb = fc.oneof(
      fc.record({ ns: fc.constantFrom(["x", X] as const, ["y", Y] as const, ["x", { ...X, team: "b" }] as const), labels: labelsArb, cls: fc.option(fc.constantFrom(...prefixes), { nil: undefined }), http: fc.boolean() }).map(
        ({ ns, labels, cls, http }) => (id: number) => podIdentity(id, ns[0], ns[1], labels, { ...(cls ? { cls } : {}), namedPorts: http ? [{ name: "http", port: 80, protocol: "TCP" }] : [] }),
      ),
      fc.constantFrom(...prefixes).map((prefix) => (id: number) => cidrIdentity(id, prefix)),
      fc.option(fc.constantFrom(...prefixes), { nil: undefined }).map((cls) => (id: number) => hostIdentity(id, cls)),
    );
    const opArb = fc.oneof(
      fc.record({ op: fc.constant("addRule" as const), rule: ruleArb }),
      fc.record({ op: fc.constant("removeRule" as const), which: fc.nat() }),
      fc.record({ op: fc.constant("addIdentity" as const), identity: identityArb }),
      fc.record({ op: fc.constant("removeIdentity" as const), which: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const index = new PeerIndex<IndexedRule>();
        const rules: IndexedRule[] = [];
        const identities = new Map<number, Identity>();
        let nextId = 300;
        const expectedOf = (r: IndexedRule) => [...identities.values()].filter((identity) => targets(r, identity)).map((identity) => identity.id).sort();
        for (const op of ops) {
          const before = new Map(rules.map((r) => [r, expectedOf(r).join()]));
          const changed = new Set<IndexedRule>();
          if (op.op === "addRule") {
            const r = rule(op.rule.namespace, op.rule.peers, { direction: op.rule.direction, named: op.rule.named });
            index.addRule(r);
            rules.push(r);
          } else if (op.op === "removeRule") {
            const [r] = rules.splice(op.which % Math.max(1, rules.length), 1);
            if (r) index.removeRule(r);
          } else if (op.op === "addIdentity") {
            const identity = op.identity(nextId++);
            identities.set(identity.id, identity);
            index.addIdentity(identity, changed);
          } else {
            const identity = [...identities.values()][op.which % Math.max(1, identities.size)];
            if (identity !== undefined) {
              identities.delete(identity.id);
              index.removeIdentity(identity, changed);
            }
          }
          for (const r of rules) assert.deepEqual([...r.identities].sort(), expectedOf(r));
          const moved = rules.filter((r) => before.has(r) && before.get(r) !== expectedOf(r).join());
          assert.deepEqual(new Set(changed), new Set(moved));
        }
        assert.equal(index.identityCount, identities.size);
      }),
      { numRuns: 300 },
    );
  });
});
