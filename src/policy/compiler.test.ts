import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { EXTERNAL_IPS, HOST_IPS, packetArb, worldArb } from "../../test/lib/world-arbitrary.ts";
import type { AnyPolicy, EBPFNetworkPolicy, NetworkPolicy } from "./api-types.ts";
import { compileWorld, PolicyCompiler } from "./compiler.ts";
import { identityKeyFields } from "./identity-key.ts";
import type { PolicyKind } from "./compiler.ts";
import {
  FIRST_NODE_LOCAL_IDENTITY,
  identityInMemory,
  DIRECTION_INGRESS,
  EP_AUDIT_ISOLATED_EGRESS,
  EP_AUDIT_ISOLATED_INGRESS,
  EP_ISOLATED_EGRESS,
  EP_ISOLATED_INGRESS,
  EP_NO_ANY_PEER_EGRESS,
  EP_NO_ANY_PEER_INGRESS,
  IDENTITY_ANY,
  IDENTITY_HOST,
  IPCACHE_HOST,
  ipcacheKeyOf,
  ipcacheKeyString,
  POLICY_FLAG_AUDIT_TCP_LIMITED,
  POLICY_FLAG_AUDIT_TCP_STRICT,
  POLICY_FLAG_TCP_LIMITED,
  POLICY_FLAG_TCP_STRICT,
  policyKeyString,
  VERDICT_ALLOW,
  VERDICT_DENY,
  VERDICT_NONE,
} from "./desired-state.ts";
import type { DesiredState, EndpointState, IpcacheEntry, PolicyEntry, StateDiff } from "./desired-state.ts";
import { LocalIdentityAllocator, TextKeyedAllocator } from "./identity.ts";
import { IpParseError, parseCidr } from "./ip.ts";
import { explainPacket, lookupVerdict } from "./lookup.ts";
import { evaluate } from "./reference-evaluator.ts";
import type { HttpFindings } from "./reference-evaluator.ts";
import { PolicyError } from "./validate.ts";
import { podKey } from "./world.ts";
import type { NamespaceInfo, Packet, PacketProtocol, PodInfo, World } from "./world.ts";

// ---------------------------------------------------------------- helpers

function ns(name: string, labels: Record<string, string> = {}): NamespaceInfo {
  return { name, labels: { ...labels, "kubernetes.io/metadata.name": name } };
}

function pod(key: string, ips: string[], labels: Record<string, string> = {}, namedPorts: PodInfo["namedPorts"] = []): PodInfo {
  const [namespace, name] = key.split("/") as [string, string];
  return { namespace, name, labels: { pod: name, ...labels }, ips, namedPorts };
}

function netpol(key: string, spec: NetworkPolicy["spec"]): NetworkPolicy {
  const [namespace, name] = key.split("/") as [string, string];
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec };
}

function ebpf(key: string, spec: EBPFNetworkPolicy["spec"]): EBPFNetworkPolicy {
  const [namespace, name] = key.split("/") as [string, string];
  return { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name, namespace }, spec };
}

function world(parts: { namespaces?: NamespaceInfo[]; pods?: PodInfo[]; policies?: AnyPolicy[]; hostIPs?: string[] }): World {
  return {
    namespaces: new Map((parts.namespaces ?? [ns("x"), ns("y")]).map((n) => [n.name, n])),
    pods: new Map((parts.pods ?? []).map((p) => [podKey(p.namespace, p.name), p])),
    policies: parts.policies ?? [],
    hostIPs: parts.hostIPs ?? [],
  };
}

/** Whether a packet passes, per the compiled state (lookup emulation). */
function allows(w: World, src: string, dst: string, protocol: PacketProtocol = "TCP", port = 80): boolean {
  const { state } = compileWorld(w);
  const packet: Packet = { src: { ip: src }, dst: { ip: dst }, protocol, port };
  return explainPacket(state, w, packet).allowed;
}

/**
 * The state with every number that depends on allocation order (identities,
 * rule ids, slots, endpoint ids) replaced by what it stands for, plus
 * structural checks that hold for any correct state.
 */
function canonicalState(state: DesiredState): unknown {
  const identity = (id: number): string => {
    if (id === IDENTITY_ANY) return "ANY";
    const info = state.identities.get(id);
    assert.ok(info, `identity ${id} is used but not described`);
    return info.description;
  };
  const rule = (id: number): string => {
    if (id === 0) return "-";
    const ref = state.rules.get(id);
    assert.ok(ref, `rule ${id} is used but not in the rule table`);
    return JSON.stringify(ref);
  };
  const slots = new Map<number, string[]>();
  for (const [k, { key, value }] of state.policy) {
    assert.equal(k, policyKeyString(key));
    const text =
      `${identity(key.identity)} dir=${key.direction} proto=${key.protocol} ${key.port}/${key.portPrefixLen}: ` +
      `${value.verdict},${value.auditVerdict} by ${rule(value.ruleId)} / ${rule(value.auditRuleId)}`;
    slots.set(key.slot, [...(slots.get(key.slot) ?? []), text]);
  }
  const content = (slot: number): string => (slots.get(slot) ?? []).sort().join("\n");
  const slotOfContent = new Map<string, number>();
  const endpoints = [...state.endpoints].map(([key, ep]) => {
    const c = content(ep.slot);
    const shared = slotOfContent.get(c);
    assert.ok(shared === undefined || shared === ep.slot, `endpoints with equal entries use slots ${shared} and ${ep.slot}`);
    slotOfContent.set(c, ep.slot);
    return `${key}: identity ${ep.identity === 0 ? "none" : identity(ep.identity)} flags ${ep.flags}\n${c}`;
  });
  const used = new Set([...state.endpoints.values()].map((ep) => ep.slot));
  for (const slot of slots.keys()) assert.ok(used.has(slot), `slot ${slot} has entries but no endpoint`);
  const ids = new Set([...state.endpoints.values()].map((ep) => ep.endpointId));
  assert.equal(ids.size, state.endpoints.size, "endpoint ids are unique");
  return {
    ipcache: [...state.ipcache.values()].map((e) => `${ipcacheKeyString(e.key)} ${identity(e.value.identity)} ${e.value.flags}`).sort(),
    endpoints: endpoints.sort(),
    rules: [...state.rules.values()].map((r) => JSON.stringify(r)).sort(),
    identities: [...state.identities.values()].map((i) => i.description).sort(),
  };
}

/** The narrow reads answer what the whole state says. */
function assertNarrowReads(compiler: PolicyCompiler, state: DesiredState): void {
  for (const [key, ep] of state.endpoints) {
    assert.deepEqual(compiler.endpointOf(key), ep);
    assert.equal(compiler.podOfEndpoint(ep.endpointId), key);
  }
  assert.equal(compiler.endpointOf("nowhere/none"), undefined);
  assert.equal(compiler.podOfEndpoint(0), undefined);
  for (const [id, ref] of state.rules) assert.deepEqual(compiler.rule(id), ref);
  assert.deepEqual(compiler.stateCounts(), { policyEntries: state.policy.size, endpoints: state.endpoints.size, identities: state.identities.size });
}

/**
 * Kernel-like maps filled only through diffs, in the documented order, checking that a packet sees
 * an endpoint's old entries or its new ones: a slot that exists (an endpoint uses it, or it has
 * entries) gains entries only of an identity no packet carries yet (no ipcache entry or endpoint has
 * it before the ipcache upserts), and an endpoint's slot loses entries only of an identity no packet
 * carries any more (none has it after the ipcache and endpoint removals). `inPlace` counts the
 * entries written to and removed from existing slots.
 */
class DiffModel {
  policy = new Map<string, PolicyEntry>();
  endpoints = new Map<string, EndpointState>();
  ipcache = new Map<string, IpcacheEntry>();
  inPlace = 0;

  apply(diff: StateDiff): void {
    const slotsInUse = new Set([...this.endpoints.values()].map((ep) => ep.slot));
    const slotsWithEntries = new Set([...this.policy.values()].map((e) => e.key.slot));
    const carriedBefore = this.#carried();
    for (const entry of diff.policyUpserts) {
      const text = policyKeyString(entry.key);
      if (slotsInUse.has(entry.key.slot) || slotsWithEntries.has(entry.key.slot)) {
        this.inPlace++;
        assert.ok(!carriedBefore.has(entry.key.identity), `slot ${entry.key.slot} written in place for identity ${entry.key.identity}, which packets carry`);
        assert.ok(!this.policy.has(text), `entry ${text} overwritten in place`);
      }
      this.policy.set(text, entry);
    }
    for (const [key, state] of diff.endpointUpserts) this.endpoints.set(key, state);
    for (const entry of diff.ipcacheUpserts) this.ipcache.set(ipcacheKeyString(entry.key), entry);
    for (const key of diff.ipcacheRemovals) assert.ok(this.ipcache.delete(ipcacheKeyString(key)), `ipcache removal of absent ${ipcacheKeyString(key)}`);
    for (const key of diff.endpointRemovals) assert.ok(this.endpoints.delete(key), `removal of absent endpoint ${key}`);
    const slotsAfter = new Set([...this.endpoints.values()].map((ep) => ep.slot));
    const carriedAfter = this.#carried();
    for (const key of diff.policyRemovals) {
      if (slotsAfter.has(key.slot)) {
        this.inPlace++;
        assert.ok(!carriedAfter.has(key.identity), `entry of slot ${key.slot} for identity ${key.identity}, which packets carry, removed while an endpoint uses it`);
      }
      assert.ok(this.policy.delete(policyKeyString(key)), `removal of absent policy key ${policyKeyString(key)}`);
    }
  }

  /** The identities a packet can carry: those of ipcache entries and endpoints. */
  #carried(): Set<number> {
    return new Set([...[...this.ipcache.values()].map((entry) => entry.value.identity), ...[...this.endpoints.values()].map((ep) => ep.identity)]);
  }

  assertEquals(state: DesiredState): void {
    assert.deepEqual(this.policy, state.policy);
    assert.deepEqual(this.endpoints, state.endpoints);
    assert.deepEqual(this.ipcache, state.ipcache);
  }
}

// ---------------------------------------------------------------- semantics

describe("compiler semantics (checked through the lookup emulation)", () => {
  const a = pod("x/a", ["10.0.0.1", "fd00::1"], { app: "web" }, [{ name: "http", port: 8080, protocol: "TCP" }]);
  const b = pod("x/b", ["10.0.0.2", "fd00::2"], { app: "db" });
  const c = pod("y/c", ["10.0.1.3"], { app: "web" });

  test("no policy: everything passes, nothing isolated", () => {
    const w = world({ pods: [a, b, c] });
    assert.equal(allows(w, "10.0.0.1", "10.0.0.2"), true);
    assert.equal(allows(w, "192.0.2.1", "10.0.0.2", "UDP", 53), true);
    const { state } = compileWorld(w);
    assert.deepEqual([...state.endpoints.values()].map((e) => e.flags), [0, 0, 0]);
  });

  test("default deny ingress isolates selected pods only, and only for ingress", () => {
    const w = world({ pods: [a, b, c], policies: [netpol("x/deny", { podSelector: { matchLabels: { app: "db" } } })] });
    assert.equal(allows(w, "10.0.0.1", "10.0.0.2"), false);
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1"), true, "egress of b is not isolated; a not selected");
    assert.equal(allows(w, "fd00::1", "fd00::2", "ICMP", 0), false);
    const { state } = compileWorld(w);
    assert.equal(state.endpoints.get("x/b")?.flags, EP_ISOLATED_INGRESS | EP_AUDIT_ISOLATED_INGRESS | EP_NO_ANY_PEER_INGRESS, "no any-peer rule");
    assert.equal(state.endpoints.get("x/a")?.flags, 0);
    const fromAnyone = netpol("x/web", { podSelector: { matchLabels: { app: "db" } }, ingress: [{ ports: [{ port: 80 }] }] });
    const open = compileWorld(world({ pods: [a, b, c], policies: [fromAnyone] })).state;
    assert.equal(open.endpoints.get("x/b")?.flags, EP_ISOLATED_INGRESS | EP_AUDIT_ISOLATED_INGRESS, "an any-peer rule: its lookup stays");
  });

  test("policyTypes default adds Egress only when egress rules exist", () => {
    const withEgress = netpol("x/p", { podSelector: {}, egress: [{ to: [{ podSelector: { matchLabels: { app: "db" } } }] }] });
    const w = world({ pods: [a, b, c], policies: [withEgress] });
    const { state } = compileWorld(w);
    assert.equal(
      state.endpoints.get("x/a")?.flags,
      EP_ISOLATED_INGRESS | EP_ISOLATED_EGRESS | EP_AUDIT_ISOLATED_INGRESS | EP_AUDIT_ISOLATED_EGRESS | EP_NO_ANY_PEER_INGRESS | EP_NO_ANY_PEER_EGRESS,
    );
    assert.equal(allows(w, "10.0.0.1", "10.0.0.2"), false, "b's ingress is isolated by the same policy");
    assert.equal(allows(w, "10.0.0.1", "10.0.1.3"), false, "egress to y/c is not allowed");
    const explicitIngressOnly = netpol("x/p", { podSelector: {}, policyTypes: ["Ingress"], egress: [{ to: [{ podSelector: {} }] }] });
    const w2 = world({ pods: [a, b, c], policies: [explicitIngressOnly] });
    assert.equal(compileWorld(w2).state.endpoints.get("x/a")?.flags, EP_ISOLATED_INGRESS | EP_AUDIT_ISOLATED_INGRESS | EP_NO_ANY_PEER_INGRESS);
    assert.equal(allows(w2, "10.0.0.1", "10.0.1.3"), true, "egress rules of an unlisted direction are ignored");
  });

  test("podSelector peers are of the policy's namespace; namespaceSelector AND podSelector", () => {
    const local = netpol("x/p", { podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }] });
    assert.equal(allows(world({ pods: [a, b, c], policies: [local] }), "10.0.0.1", "10.0.0.2"), true);
    assert.equal(allows(world({ pods: [a, b, c], policies: [local] }), "10.0.1.3", "10.0.0.2"), false, "y/c is web but in y");
    const both = netpol("x/p", {
      podSelector: { matchLabels: { app: "db" } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { env: "prod" } }, podSelector: { matchLabels: { app: "web" } } }] }],
    });
    const nss = [ns("x"), ns("y", { env: "prod" })];
    assert.equal(allows(world({ namespaces: nss, pods: [a, b, c], policies: [both] }), "10.0.1.3", "10.0.0.2"), true);
    assert.equal(allows(world({ namespaces: nss, pods: [a, b, c], policies: [both] }), "10.0.0.1", "10.0.0.2"), false);
    const either = netpol("x/p", {
      podSelector: { matchLabels: { app: "db" } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { env: "prod" } } }, { podSelector: { matchLabels: { app: "web" } } }] }],
    });
    assert.equal(allows(world({ namespaces: nss, pods: [a, b, c], policies: [either] }), "10.0.0.1", "10.0.0.2"), true);
    assert.equal(allows(world({ namespaces: nss, pods: [a, b, c], policies: [either] }), "10.0.1.3", "10.0.0.2"), true);
  });

  test("the same objects in any order compile to the same entries, rule ids and identity numbers", () => {
    fc.assert(
      fc.property(
        worldArb(5, 4).chain((w) => fc.tuple(fc.constant(w), fc.shuffledSubarray(w.policies, { minLength: w.policies.length }))),
        ([w, shuffled]) => {
          assert.deepEqual(compileWorld({ ...w, policies: shuffled }).state, compileWorld(w).state);
        },
      ),
      { numRuns: 200 },
    );
  });

  test("ipBlock with except, applied to pod IPs and outside addresses", () => {
    const p = netpol("x/p", {
      podSelector: { matchLabels: { app: "db" } },
      ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.1.0/24", "10.0.0.1/32"] } }] }],
    });
    const w = world({ pods: [a, b, c], policies: [p] });
    assert.equal(allows(w, "10.0.0.1", "10.0.0.2"), false, "a's IP is excepted");
    assert.equal(allows(w, "10.0.1.3", "10.0.0.2"), false, "c is in the excepted /24");
    assert.equal(allows(w, "10.0.200.9", "10.0.0.2"), true, "outside address inside the cidr");
    assert.equal(allows(w, "10.0.1.9", "10.0.0.2"), false);
    assert.equal(allows(w, "10.1.0.1", "10.0.0.2"), false);
    assert.equal(allows(w, "fd00::1", "fd00::2"), false, "an IPv4 block never matches IPv6");
    const { state, compiler } = compileWorld(w);
    assert.deepEqual(
      [...state.ipcache.keys()].sort(),
      ["10.0.0.0/16", "10.0.0.1/32", "10.0.0.2/32", "10.0.1.0/24", "10.0.1.3/32", "fd00::1/128", "fd00::2/128"],
    );
    const { ipcache, endpoints, policy, tcpLimits } = state;
    assert.deepEqual(compiler.mapsState(), { ipcache, endpoints, policy, tcpLimits }, "the full sync's read is the state's maps");
  });

  test("ports: protocol default TCP, any port of a protocol, ranges, named ports", () => {
    const p = netpol("x/p", {
      podSelector: {},
      ingress: [{ ports: [{ port: 5000, endPort: 5003 }, { protocol: "UDP" }, { port: "http" }, { protocol: "UDP", port: "http" }] }],
    });
    const w = world({ pods: [a, b], policies: [p] });
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1", "TCP", 5002), true);
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1", "TCP", 5004), false);
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1", "SCTP", 5002), false);
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1", "UDP", 12345), true);
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1", "TCP", 8080), true, "named port http of a itself");
    assert.equal(allows(w, "10.0.0.1", "10.0.0.2", "TCP", 8080), false, "b has no port named http");
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1", "ICMP", 0), false, "ports listed: ICMP matches nothing");
    const open = netpol("x/p", { podSelector: {}, ingress: [{}] });
    assert.equal(allows(world({ pods: [a, b], policies: [open] }), "10.0.0.2", "10.0.0.1", "ICMP", 0), true);
  });

  test("egress named ports resolve against the destination pod, also with any peer", () => {
    const p = netpol("x/p", { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Egress"], egress: [{ ports: [{ port: "http" }] }] });
    const w = world({ pods: [a, b, c], policies: [p] });
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1", "TCP", 8080), true);
    assert.equal(allows(w, "10.0.0.2", "10.0.0.1", "TCP", 80), false);
    assert.equal(allows(w, "10.0.0.2", "10.0.1.3", "TCP", 8080), false, "c has no named port");
    assert.equal(allows(w, "10.0.0.2", "192.0.2.1", "TCP", 8080), false, "non-pod destinations never match a named port");
  });

  test("Deny beats Allow of either API; Audit changes only the audit verdict", () => {
    const allow = netpol("x/allow", { podSelector: {}, ingress: [{}] });
    const deny = ebpf("x/deny", { selector: { matchLabels: { app: "db" } }, ingress: [{ action: "Deny", from: [{ podSelector: { matchLabels: { app: "web" } } }] }] });
    const w = world({ pods: [a, b], policies: [allow, deny] });
    const { state } = compileWorld(w);
    const denied = explainPacket(state, w, { src: { ip: "10.0.0.1" }, dst: { ip: "10.0.0.2" }, protocol: "TCP", port: 80 });
    assert.equal(denied.allowed, false);
    assert.equal(denied.ingress?.reason, "policy-deny");
    assert.deepEqual(state.rules.get(denied.ingress?.ruleId ?? 0)?.name, "deny");
    const audit = ebpf("x/deny", { ...deny.spec, mode: "Audit" });
    const w2 = world({ pods: [a, b], policies: [allow, audit] });
    const s2 = compileWorld(w2).state;
    const audited = explainPacket(s2, w2, { src: { ip: "10.0.0.1" }, dst: { ip: "10.0.0.2" }, protocol: "TCP", port: 80 });
    assert.equal(audited.allowed, true);
    assert.equal(audited.auditAllowed, false);
    assert.equal(audited.ingress?.audit.reason, "policy-deny");
    const alone = world({ pods: [a, b], policies: [ebpf("x/audit-only", { selector: {}, mode: "Audit" })] });
    assert.equal(compileWorld(alone).state.endpoints.get("x/a")?.flags, EP_AUDIT_ISOLATED_INGRESS | EP_NO_ANY_PEER_INGRESS, "audit isolates only for audit");
    assert.equal(allows(alone, "10.0.0.1", "10.0.0.2"), true);
  });

  test("ingress from a host IP is always allowed; egress to it is policy", () => {
    const p = netpol("x/p", { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    const w = world({ pods: [a, b], policies: [p], hostIPs: ["10.9.0.1"] });
    assert.equal(allows(w, "10.9.0.1", "10.0.0.1"), true);
    assert.equal(allows(w, "10.0.0.1", "10.9.0.1"), false);
    const { state } = compileWorld(w);
    assert.deepEqual(state.ipcache.get("10.9.0.1/32"), { key: ipcacheKeyOf(parseCidr("10.9.0.1/32")), value: { identity: IDENTITY_HOST, flags: IPCACHE_HOST } });
    const withBlock = world({ pods: [a, b], hostIPs: ["10.9.0.1"], policies: [netpol("x/p", { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "10.9.0.0/16" } }] }] })] });
    assert.equal(allows(withBlock, "10.0.0.1", "10.9.0.1"), true, "a host IP inside an ipBlock gets a class-bearing host identity");
    assert.notEqual(compileWorld(withBlock).state.ipcache.get("10.9.0.1/32")?.value.identity, IDENTITY_HOST);
  });
});

describe("tcp.strict", () => {
  const [a, b] = [pod("x/a", ["10.0.0.1"]), pod("x/b", ["10.0.0.2"])];
  const strictFrom = (name: string, mode: "Enforce" | "Audit" = "Enforce") =>
    ebpf(`x/${name}`, { selector: { matchLabels: { pod: "a" } }, mode, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }], ports: [{ port: 5432 }], tcp: { strict: true } }] });
  const ingressOf = (policies: AnyPolicy[], protocol: PacketProtocol = "TCP", port = 5432) => {
    const w = world({ pods: [a, b], policies });
    return explainPacket(compileWorld(w).state, w, { src: { ip: "10.0.0.2" }, dst: { ip: "10.0.0.1" }, protocol, port }).ingress;
  };

  test("a flow only strict rules allow is strict, in the entry and as the datapath reads it", () => {
    const w = world({ pods: [a, b], policies: [strictFrom("strict")] });
    const { state } = compileWorld(w);
    const flags = [...state.policy.values()].map((entry) => entry.value.flags);
    assert.deepEqual(flags, [POLICY_FLAG_TCP_STRICT | POLICY_FLAG_AUDIT_TCP_STRICT]);
    assert.deepEqual([ingressOf([strictFrom("strict")])?.allowed, ingressOf([strictFrom("strict")])?.tcpStrict], [true, true]);
  });

  test("rules add up: an Allow without tcp.strict covering the same flow makes it lenient; one covering other ports does not", () => {
    const lenient = netpol("x/lenient", { podSelector: {}, ingress: [{ ports: [{ port: 5000, endPort: 6000 }] }] });
    assert.equal(ingressOf([strictFrom("strict"), lenient])?.tcpStrict, false);
    const elsewhere = netpol("x/elsewhere", { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] });
    assert.equal(ingressOf([strictFrom("strict"), elsewhere])?.tcpStrict, true);
    assert.equal(ingressOf([strictFrom("strict"), elsewhere], "TCP", 80)?.tcpStrict, false);
  });

  test("an Audit-mode strict rule marks only the audit verdict; a Deny makes nothing strict", () => {
    const open = netpol("x/open", { podSelector: {}, ingress: [{}] });
    const audited = ingressOf([strictFrom("audit", "Audit")]);
    assert.deepEqual([audited?.allowed, audited?.tcpStrict, audited?.audit.tcpStrict], [true, false, true]);
    assert.equal(ingressOf([strictFrom("audit", "Audit"), open])?.audit.tcpStrict, false, "an enforced lenient allow counts for the audit verdict too");
    const deny = ebpf("x/deny", { selector: {}, ingress: [{ action: "Deny", ports: [{ port: 5432 }] }] });
    assert.deepEqual([ingressOf([strictFrom("strict"), deny])?.allowed, ingressOf([strictFrom("strict"), deny])?.tcpStrict], [false, false]);
  });
});

describe("tcp connection limits", () => {
  const [a, b] = [pod("x/a", ["10.0.0.1"]), pod("x/b", ["10.0.0.2"])];
  type Tcp = NonNullable<NonNullable<EBPFNetworkPolicy["spec"]["ingress"]>[number]["tcp"]>;
  const limitedFrom = (name: string, tcp: Tcp = { maxConnectionsPerSource: 3 }, mode: "Enforce" | "Audit" = "Enforce", peers = [{ podSelector: { matchLabels: { pod: "b" } } }]) =>
    ebpf(`x/${name}`, { selector: { matchLabels: { pod: "a" } }, mode, ingress: [{ from: peers, ports: [{ port: 5432 }], tcp }] });
  const ingressOf = (policies: AnyPolicy[], protocol: PacketProtocol = "TCP", port = 5432) => {
    const w = world({ pods: [a, b], policies });
    const { state } = compileWorld(w);
    return { state, ingress: explainPacket(state, w, { src: { ip: "10.0.0.2" }, dst: { ip: "10.0.0.1" }, protocol, port }).ingress };
  };
  const ruleName = (state: DesiredState, id: number | undefined): string => {
    const rule = state.rules.get(id ?? 0);
    return rule ? `${rule.namespace}/${rule.name}[${rule.index}]` : `#${id}`;
  };

  test("a flow only limited rules allow is limited, charged to the entry's rule, whose limits the state holds", () => {
    const { state, ingress } = ingressOf([limitedFrom("max", { maxConnectionsPerSource: 3, newConnectionsPerSecond: { average: 5, burst: 10 } })]);
    assert.deepEqual([...state.policy.values()].map((entry) => entry.value.flags), [POLICY_FLAG_TCP_LIMITED | POLICY_FLAG_AUDIT_TCP_LIMITED]);
    assert.deepEqual([ingress?.allowed, ingress?.tcpLimited, ingress?.tcpStrict], [true, true, false]);
    assert.deepEqual(state.tcpLimits, new Map([[ingress?.ruleId ?? 0, { maxConnections: 3, rate: 5, burst: 10 }]]));
    const rate = ingressOf([limitedFrom("rate", { newConnectionsPerSecond: { average: 2, burst: 2 } })]).state;
    assert.deepEqual([...rate.tcpLimits.values()], [{ maxConnections: 0, rate: 2, burst: 2 }]);
  });

  test("rules add up: an unlimited Allow covering the same flow lifts the limit; one covering other ports does not", () => {
    const open = netpol("x/open", { podSelector: {}, ingress: [{ ports: [{ port: 5000, endPort: 6000 }] }] });
    assert.equal(ingressOf([limitedFrom("max"), open]).ingress?.tcpLimited, false);
    const anyPeer = netpol("x/any", { podSelector: {}, ingress: [{ ports: [{ port: 5432 }] }] });
    assert.equal(ingressOf([limitedFrom("max"), anyPeer]).ingress?.tcpLimited, false, "an any-peer entry's allow counts too");
    const elsewhere = netpol("x/elsewhere", { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] });
    assert.equal(ingressOf([limitedFrom("max"), elsewhere]).ingress?.tcpLimited, true);
    assert.equal(ingressOf([limitedFrom("max"), elsewhere], "TCP", 80).ingress?.tcpLimited, false);
    assert.equal(ingressOf([limitedFrom("max")], "UDP").ingress?.allowed, false, "the rule's ports are TCP");
    const strictAndLimited = ingressOf([limitedFrom("both", { strict: true, maxConnectionsPerSource: 1 })]).ingress;
    assert.deepEqual([strictAndLimited?.tcpStrict, strictAndLimited?.tcpLimited], [true, true]);
  });

  test("several limited rules: the one deciding the entry is charged, as its reference order says", () => {
    const { state, ingress } = ingressOf([limitedFrom("zz", { maxConnectionsPerSource: 9 }), limitedFrom("aa", { maxConnectionsPerSource: 1 })]);
    assert.equal(ingress?.tcpLimited, true);
    assert.equal(ruleName(state, ingress?.ruleId), "x/aa[0]");
    assert.deepEqual(state.tcpLimits.get(ingress?.ruleId ?? 0), { maxConnections: 1, rate: 0, burst: 0 });
    assert.equal(state.tcpLimits.size, 2);
  });

  test("an Audit-mode limited rule marks only the audit verdict; a Deny leaves nothing limited", () => {
    const audited = ingressOf([limitedFrom("audit", { maxConnectionsPerSource: 1 }, "Audit")]).ingress;
    assert.deepEqual([audited?.allowed, audited?.tcpLimited, audited?.audit.tcpLimited], [true, false, true]);
    const enforcedToo = ingressOf([limitedFrom("audit", { maxConnectionsPerSource: 1 }, "Audit"), limitedFrom("enforced")]);
    assert.equal(enforcedToo.ingress?.tcpLimited, true);
    assert.equal(ruleName(enforcedToo.state, enforcedToo.ingress?.audit.ruleId), "x/audit[0]", "the audit verdict's own rule");
    const deny = ebpf("x/deny", { selector: {}, ingress: [{ action: "Deny", ports: [{ port: 5432 }] }] });
    // The any-peer deny and b's limited allow are two entries: the kernel's fold makes it a deny, not limited.
    const denied = ingressOf([limitedFrom("max"), deny]);
    assert.deepEqual([denied.ingress?.allowed, denied.ingress?.tcpLimited], [false, false]);
    assert.equal(POLICY_FLAG_AUDIT_TCP_LIMITED & POLICY_FLAG_TCP_LIMITED, 0);
  });

  test("commits write the limits of rules that gain, change or lose them, and nothing else", () => {
    const w = world({ pods: [a, b], policies: [limitedFrom("p", { maxConnectionsPerSource: 3 })] });
    const { compiler, state } = compileWorld(w);
    const [id] = [...state.tcpLimits.keys()];
    assert.ok(id !== undefined);
    compiler.upsertPolicy(limitedFrom("p", { maxConnectionsPerSource: 3 }));
    assert.deepEqual([compiler.commit().tcpLimitUpserts, compiler.lastCommitStats.policies], [[], 1], "unchanged limits are not written again");
    compiler.upsertPolicy(limitedFrom("p", { maxConnectionsPerSource: 4 }));
    const changed = compiler.commit();
    assert.deepEqual([changed.tcpLimitUpserts, changed.tcpLimitRemovals, changed.policyUpserts], [[[id, { maxConnections: 4, rate: 0, burst: 0 }]], [], []], "a new limit is map data only");
    compiler.upsertPolicy(limitedFrom("p", {}));
    const lifted = compiler.commit();
    assert.deepEqual(lifted.tcpLimitRemovals, [id]);
    assert.equal(lifted.policyUpserts[0]?.value.flags, 0, "the entry is no longer limited");
    compiler.upsertPolicy(limitedFrom("p", { newConnectionsPerSecond: { average: 1, burst: 1 } }));
    assert.deepEqual(compiler.commit().tcpLimitUpserts, [[id, { maxConnections: 0, rate: 1, burst: 1 }]]);
    compiler.deletePolicy("EBPFNetworkPolicy", "x", "p");
    assert.deepEqual(compiler.commit().tcpLimitRemovals, [id]);
    assert.equal(compiler.state().tcpLimits.size, 0);
  });
});

describe("compiler against the reference evaluator", () => {
  test("the compiled state, read as the datapath reads it, gives the evaluator's verdicts", () => {
    const scenario = worldArb(5, 4).chain((w) => fc.tuple(fc.constant(w), fc.array(packetArb(w), { minLength: 25, maxLength: 25 })));
    fc.assert(
      fc.property(scenario, ([w, packets]) => {
        const { state } = compileWorld(w);
        for (const packet of packets) {
          const expected = evaluate(w, packet);
          const got = explainPacket(state, w, packet);
          const what = JSON.stringify(packet);
          assert.equal(got.egress?.allowed ?? true, expected.egress.allowed, `egress of ${what}`);
          assert.equal(got.ingress?.allowed ?? true, expected.ingress.allowed, `ingress of ${what}`);
          assert.equal(got.egress?.audit.allowed ?? true, expected.egress.audit.allowed, `audit egress of ${what}`);
          assert.equal(got.ingress?.audit.allowed ?? true, expected.ingress.audit.allowed, `audit ingress of ${what}`);
          assert.equal(got.allowed, expected.allowed);
          assert.equal(got.egress?.tcpStrict ?? false, expected.egress.tcpStrict, `strict egress of ${what}`);
          assert.equal(got.ingress?.tcpStrict ?? false, expected.ingress.tcpStrict, `strict ingress of ${what}`);
          assert.equal(got.egress?.audit.tcpStrict ?? false, expected.egress.audit.tcpStrict, `audit strict egress of ${what}`);
          assert.equal(got.ingress?.audit.tcpStrict ?? false, expected.ingress.audit.tcpStrict, `audit strict ingress of ${what}`);
          assert.equal(got.egress?.tcpLimited ?? false, expected.egress.tcpLimited, `limited egress of ${what}`);
          assert.equal(got.ingress?.tcpLimited ?? false, expected.ingress.tcpLimited, `limited ingress of ${what}`);
          assert.equal(got.egress?.audit.tcpLimited ?? false, expected.egress.audit.tcpLimited, `audit limited egress of ${what}`);
          assert.equal(got.ingress?.audit.tcpLimited ?? false, expected.ingress.audit.tcpLimited, `audit limited ingress of ${what}`);
          // HTTP rules: the same flows steered to the proxy, judged by the same rules.
          const names = (ids: number[]) => ids.map((id) => { const ref = state.rules.get(id); return ref ? `${ref.kind} ${ref.namespace}/${ref.name} rule ${ref.index}` : `#${id}`; });
          const httpOf = (judges: { allows: number[] | undefined; denies: number[] } | undefined) => judges && { allows: judges.allows && names(judges.allows).sort(), denies: names(judges.denies).sort() };
          const expectedHttp = (findings: HttpFindings | undefined) => findings && { allows: findings.allows?.map((named) => named.name).sort(), denies: findings.denies.map((named) => named.name).sort() };
          for (const [side, result, reference] of [["egress", got.egress, expected.egress], ["ingress", got.ingress, expected.ingress]] as const) {
            if (!result) continue;
            assert.deepEqual(httpOf(result.http), expectedHttp(reference.http), `http ${side} of ${what}`);
            assert.deepEqual(httpOf(result.audit.http), expectedHttp(reference.audit.http), `audit http ${side} of ${what}`);
            const proxied = reference.allowed && (reference.http !== undefined || (reference.audit.allowed && reference.audit.http !== undefined));
            assert.equal(result.proxied, proxied, `proxied ${side} of ${what}`);
          }
          // A limited flow is charged to a rule with limits, which the state holds for the datapath.
          for (const direction of [got.egress, got.ingress]) {
            if (direction?.tcpLimited) assert.ok(state.tcpLimits.has(direction.ruleId), `limits of rule ${direction.ruleId} for ${what}`);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  test("a slot holds entries only for directions its endpoints are isolated in, any-peer ones only where not flagged otherwise (the datapath looks up no others)", () => {
    fc.assert(
      fc.property(worldArb(5, 4), (w) => {
        const { state } = compileWorld(w);
        const directions = new Map<number, Set<number>>();
        const anyPeer = new Set<string>();
        for (const { key } of state.policy.values()) {
          directions.set(key.slot, (directions.get(key.slot) ?? new Set()).add(key.direction));
          if (key.identity === IDENTITY_ANY) anyPeer.add(`${key.slot}/${key.direction}`);
        }
        for (const [pod, endpoint] of state.endpoints) {
          for (const direction of directions.get(endpoint.slot) ?? []) {
            const ingress = direction === DIRECTION_INGRESS;
            const isolating = ingress ? EP_ISOLATED_INGRESS | EP_AUDIT_ISOLATED_INGRESS : EP_ISOLATED_EGRESS | EP_AUDIT_ISOLATED_EGRESS;
            assert.ok((endpoint.flags & isolating) !== 0, `${pod}: slot ${endpoint.slot} has direction ${direction} entries, flags ${endpoint.flags}`);
            const noAnyPeer = (endpoint.flags & (ingress ? EP_NO_ANY_PEER_INGRESS : EP_NO_ANY_PEER_EGRESS)) !== 0;
            assert.ok(!(noAnyPeer && anyPeer.has(`${endpoint.slot}/${direction}`)), `${pod}: flagged without any-peer entries in direction ${direction}, but has some`);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------- structure

describe("compiler structure", () => {
  test("replicas share one identity and one slot; an ipBlock carving them apart splits the identity", () => {
    const replicas = [1, 2, 3].map((i) => ({ ...pod(`x/r${i}`, [`10.0.0.${i}`], { app: "web" }), labels: { app: "web" } }));
    const p = netpol("x/p", { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] });
    const { state } = compileWorld(world({ pods: replicas, policies: [p] }));
    assert.equal(new Set([...state.ipcache.values()].map((e) => e.value.identity)).size, 1);
    assert.equal(new Set([...state.endpoints.values()].map((e) => e.slot)).size, 1);
    assert.equal(state.policy.size, 1, "one identity x any protocol");
    const carve = netpol("x/q", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/24", except: ["10.0.0.3/32"] } }] }] });
    const s2 = compileWorld(world({ pods: replicas, policies: [p, carve] })).state;
    const ids = ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"].map((k) => s2.ipcache.get(k)?.value.identity);
    assert.equal(ids[0], ids[1]);
    assert.notEqual(ids[0], ids[2]);
  });

  test("entries store the combination of every covering item, so one LPM answers", () => {
    const p = ebpf("x/p", {
      selector: {},
      ingress: [
        { action: "Allow", ports: [{ port: 1000, endPort: 1999 }] },
        { action: "Deny", ports: [{ port: 1024, endPort: 1031 }] },
        { action: "Allow" },
      ],
    });
    const w = world({ pods: [pod("x/a", ["10.0.0.1"])], policies: [p] });
    const { state } = compileWorld(w);
    const values = [...state.policy.values()];
    const anyProto = values.find((e) => e.key.protocol === 0);
    assert.deepEqual(anyProto?.value, { verdict: VERDICT_ALLOW, auditVerdict: VERDICT_ALLOW, ruleId: anyProto?.value.ruleId, auditRuleId: anyProto?.value.ruleId, flags: 0 });
    const deny = values.find((e) => e.key.port === 1024 && e.key.portPrefixLen === 13);
    assert.equal(deny?.value.verdict, VERDICT_DENY);
    assert.equal(state.rules.get(deny?.value.ruleId ?? 0)?.index, 1);
    for (const [port, ok] of [[999, true], [1023, true], [1024, false], [1031, false], [1032, true], [2000, true]] as const) {
      assert.equal(allows(w, "10.0.0.9", "10.0.0.1", "TCP", port), ok, `port ${port}`);
    }
    assert.ok(values.every((e) => e.value.auditVerdict !== VERDICT_NONE));
  });

  test("rule ids are stable across recompiles and freed with their policy", () => {
    const compiler = new PolicyCompiler();
    const p = netpol("x/p", { podSelector: {}, ingress: [{}, { ports: [{ port: 80 }] }] });
    compiler.upsertPolicy(p);
    compiler.commit();
    const before = [...compiler.state().rules.keys()];
    compiler.upsertPolicy(netpol("x/p", { podSelector: {}, ingress: [{}, { ports: [{ port: 81 }] }, {}] }));
    compiler.commit();
    const after = [...compiler.state().rules.keys()];
    assert.deepEqual(after.slice(0, 2), before);
    assert.equal(after.length, 3);
    compiler.deletePolicy("NetworkPolicy", "x", "p");
    compiler.commit();
    assert.equal(compiler.state().rules.size, 0);
  });

  test("nodeName: only local pods become endpoints, every pod gets ipcache entries", () => {
    const local = { ...pod("x/a", ["10.0.0.1"]), nodeName: "n1" };
    const remote = { ...pod("x/b", ["10.0.0.2"]), nodeName: "n2" };
    const { state } = compileWorld(world({ pods: [local, remote] }), { nodeName: "n1" });
    assert.deepEqual([...state.endpoints.keys()], ["x/a"]);
    assert.equal(state.ipcache.size, 2);
  });

  test("input that skipped validation is refused at the mutation, naming the object and field", () => {
    const compiler = new PolicyCompiler();
    assert.throws(
      () => compiler.upsertPolicy(netpol("x/p", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/33" } }] }] })),
      (e: unknown) =>
        e instanceof PolicyError &&
        e.message === 'Cannot load NetworkPolicy "x/p": spec.ingress[0].from[0].ipBlock.cidr "10.0.0.0/33" is not a valid CIDR: prefix length 33 is above 32',
    );
    assert.throws(
      () => compiler.upsertPolicy(netpol("x/p", { podSelector: {}, ingress: [{ ports: [{}, { port: 80, endPort: 70 }] }] })),
      { name: "PolicyError", message: 'Cannot load NetworkPolicy "x/p": spec.ingress[0].ports[1] ports 80 to 70 are not a port range' },
    );
    assert.throws(() => compiler.upsertPod(pod("x/a", ["10.0.0.256"])), { name: "PolicyError", message: 'Cannot load Pod "x/a": ips[0] "10.0.0.256" is not a valid IP address' });
    assert.throws(() => compiler.setHostIPs(["nope"]), IpParseError);
    assert.deepEqual(compiler.commit(), {
      policyUpserts: [], endpointUpserts: [], ipcacheUpserts: [], ipcacheRemovals: [], endpointRemovals: [], policyRemovals: [], tcpLimitUpserts: [], tcpLimitRemovals: [],
    });
  });

  test("identities are released when their last address goes", () => {
    const allocator = new LocalIdentityAllocator();
    const compiler = new PolicyCompiler({ identities: allocator });
    compiler.upsertPod(pod("x/a", ["10.0.0.1", "fd00::1"]));
    compiler.upsertPolicy(netpol("x/p", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }] }));
    compiler.commit();
    assert.equal(allocator.size, 3, "pod in class 10/8, pod without class (v6), cidr 10/8");
    compiler.deletePod("x", "a");
    compiler.deletePolicy("NetworkPolicy", "x", "p");
    const diff = compiler.commit();
    assert.equal(allocator.size, 0);
    assert.deepEqual(diff.ipcacheRemovals.map(ipcacheKeyString).sort(), ["10.0.0.0/8", "10.0.0.1/32", "fd00::1/128"]);
    assert.deepEqual(diff.endpointRemovals, ["x/a"]);
  });

  test("an unchanged re-upsert commits an empty diff", () => {
    const w = world({
      pods: [pod("x/a", ["10.0.0.1"]), pod("y/b", ["10.0.0.2"])],
      policies: [netpol("x/p", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })],
    });
    const { compiler } = compileWorld(w);
    for (const p of w.pods.values()) compiler.upsertPod(p);
    for (const p of w.policies) compiler.upsertPolicy(p);
    for (const n of w.namespaces.values()) compiler.upsertNamespace(n);
    compiler.setHostIPs([]);
    const diff = compiler.commit();
    assert.deepEqual(Object.values(diff).map((list) => list.length), [0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

// ---------------------------------------------------------------- incremental = from scratch

type Command =
  | { op: "upsertNamespace"; ns: NamespaceInfo }
  | { op: "deleteNamespace"; name: string }
  | { op: "upsertPod"; pod: PodInfo }
  | { op: "deletePod"; key: string }
  | { op: "upsertPolicy"; policy: AnyPolicy }
  | { op: "deletePolicy"; kind: PolicyKind; namespace: string; name: string }
  | { op: "setHostIPs"; ips: string[] }
  | { op: "commit" };

function commandArb(pool: World[]): fc.Arbitrary<Command> {
  const namespaces = pool.flatMap((w) => [...w.namespaces.values()]);
  const pods = pool.flatMap((w) => [...w.pods.values()]);
  const policies = pool.flatMap((w) => w.policies);
  const options: fc.Arbitrary<Command>[] = [
    fc.constantFrom(...namespaces).map((n) => ({ op: "upsertNamespace" as const, ns: n })),
    fc.constantFrom(...namespaces).map((n) => ({ op: "deleteNamespace" as const, name: n.name })),
    fc.constantFrom(...pods).map((p) => ({ op: "upsertPod" as const, pod: p })),
    fc.constantFrom(...pods).map((p) => ({ op: "deletePod" as const, key: podKey(p.namespace, p.name) })),
    // A host IP that is also a pod's, to exercise who owns a shared address.
    fc.subarray([...HOST_IPS, EXTERNAL_IPS[0] as string, "10.0.1.1"]).map((ips) => ({ op: "setHostIPs" as const, ips })),
    fc.constant({ op: "commit" as const }),
  ];
  if (policies.length > 0) {
    options.push(
      fc.constantFrom(...policies).map((p) => ({ op: "upsertPolicy" as const, policy: p })),
      fc.constantFrom(...policies).map((p) => ({
        op: "deletePolicy" as const,
        kind: p.kind,
        namespace: p.metadata.namespace ?? "default",
        name: p.metadata.name,
      })),
    );
  }
  return fc.oneof(...options);
}

/** Up to `maxLength` commands over a pool of two or three worlds, so objects come back changed. */
function commandsArb(maxLength: number): fc.Arbitrary<Command[]> {
  return fc.array(worldArb(5, 4), { minLength: 2, maxLength: 3 }).chain((pool) => fc.array(commandArb(pool), { minLength: 1, maxLength }));
}

/** The world the commands built so far, kept alongside the compiler. */
class WorldModel {
  namespaces = new Map<string, NamespaceInfo>();
  pods = new Map<string, PodInfo>();
  policies = new Map<string, AnyPolicy>();
  hostIPs: string[] = [];

  run(compiler: PolicyCompiler, command: Exclude<Command, { op: "commit" }>): void {
    switch (command.op) {
      case "upsertNamespace":
        this.namespaces.set(command.ns.name, command.ns);
        return compiler.upsertNamespace(command.ns);
      case "deleteNamespace":
        this.namespaces.delete(command.name);
        return compiler.deleteNamespace(command.name);
      case "upsertPod":
        this.pods.set(podKey(command.pod.namespace, command.pod.name), command.pod);
        return compiler.upsertPod(command.pod);
      case "deletePod": {
        this.pods.delete(command.key);
        const [namespace, name] = command.key.split("/") as [string, string];
        return compiler.deletePod(namespace, name);
      }
      case "upsertPolicy": {
        const p = command.policy;
        this.policies.set(`${p.kind}/${p.metadata.namespace}/${p.metadata.name}`, p);
        return compiler.upsertPolicy(p);
      }
      case "deletePolicy":
        this.policies.delete(`${command.kind}/${command.namespace}/${command.name}`);
        return compiler.deletePolicy(command.kind, command.namespace, command.name);
      case "setHostIPs":
        this.hostIPs = command.ips;
        return compiler.setHostIPs(command.ips);
    }
  }

  world(): World {
    return { namespaces: new Map(this.namespaces), pods: new Map(this.pods), policies: [...this.policies.values()], hostIPs: this.hostIPs };
  }
}

/**
 * Counts references per key, to check the compiler releases exactly what it
 * allocates, and hands a freed number to the next new key at once (as a
 * cluster-wide allocator may), the harshest numbering for the compiler.
 */
class ReusingAllocator extends TextKeyedAllocator {
  readonly references = new Map<string, { id: number; count: number }>();
  allocate(key: string): number {
    const held = this.references.get(key);
    if (held) {
      held.count++;
      return held.id;
    }
    const used = new Set([...this.references.values()].map((r) => r.id));
    let id = 256;
    while (used.has(id)) id++;
    this.references.set(key, { id, count: 1 });
    return id;
  }
  release(key: string): void {
    const held = this.references.get(key);
    assert.ok(held, `release of unreferenced key ${key}`);
    if (--held.count === 0) this.references.delete(key);
  }
}

/**
 * Runs commands against a compiler and a {@link WorldModel}; after every commit, the state equals
 * compileWorld of the current world, the diffs rebuild it in kernel-like maps (see {@link DiffModel}),
 * endpoint ids are stable and identity references exact. Returns the entries changed in place.
 */
function runCommands(commands: Command[], nodeName?: string): number {
  const node = nodeName === undefined ? {} : { nodeName };
  const allocator = new ReusingAllocator();
  const compiler = new PolicyCompiler({ identities: allocator, ...node });
  const model = new WorldModel();
  const maps = new DiffModel();
  const endpointIds = new Map<string, number>();
  for (const command of [...commands, { op: "commit" as const }]) {
    if (command.op !== "commit") {
      model.run(compiler, command);
      continue;
    }
    maps.apply(compiler.commit());
    const state = compiler.state();
    maps.assertEquals(state);
    assertNarrowReads(compiler, state);
    assert.deepEqual(canonicalState(state), canonicalState(compileWorld(model.world(), node).state));
    for (const [key, ep] of state.endpoints) {
      assert.equal(endpointIds.get(key) ?? ep.endpointId, ep.endpointId, `endpoint id of ${key} changed`);
      endpointIds.set(key, ep.endpointId);
    }
    for (const key of endpointIds.keys()) if (!state.endpoints.has(key)) endpointIds.delete(key);
    // One reference per identity in use, nothing leaked.
    const inUse = new Set([...state.ipcache.values()].map((e) => e.value.identity).filter((id) => id >= 256));
    assert.equal(allocator.references.size, inUse.size);
    assert.ok([...allocator.references.values()].every((r) => r.count === 1));
  }
  return maps.inPlace;
}

describe("incremental compilation", () => {
  test("after every commit the state equals compileWorld of the current world, and the diffs rebuild it", () => {
    fc.assert(
      fc.property(commandsArb(40), (commands) => {
        runCommands(commands);
      }),
      { numRuns: 150 },
    );
  });

  // An allow with a port range, a Deny, an HTTP rule and egress named ports, all reaching most identities.
  const broad: AnyPolicy[] = [
    netpol("x/from-all", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 80 }, { port: 8000, endPort: 8100 }] }] }),
    ebpf("y/deny", { selector: {}, ingress: [{ action: "Deny", from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "x" } } }], ports: [{ port: 8080 }] }] }),
    ebpf("z/http", {
      selector: {},
      ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 9000 }], http: [{ method: "GET" }] }],
      egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: "http" }] }],
    }),
  ];
  /** The broad policies, then pod and namespace churn. */
  const churnArb = fc
    .array(worldArb(5, 1), { minLength: 2, maxLength: 3 })
    .chain((pool) => fc.array(commandArb(pool).filter((command) => command.op !== "upsertPolicy" && command.op !== "deletePolicy"), { minLength: 1, maxLength: 40 }))
    .map((commands): Command[] => [...broad.map((policy) => ({ op: "upsertPolicy" as const, policy })), { op: "commit" as const }, ...commands]);

  test("under pod and namespace churn with peers admitting most identities, slots change in place and every commit stays right", () => {
    let inPlace = 0;
    fc.assert(
      fc.property(churnArb, (commands) => {
        inPlace += runCommands(commands);
      }),
      { numRuns: 100 },
    );
    assert.ok(inPlace > 0, "the commands changed slots in place");
  });

  test("the same churn on a node, where only local pods are endpoints: every commit equals compileWorld of the current world", () => {
    // Pods alternate between two nodes by name, so a namespace holds local and remote pods.
    const onNodes = (command: Command): Command =>
      command.op === "upsertPod" ? { ...command, pod: { ...command.pod, nodeName: command.pod.name.charCodeAt(0) % 2 === 0 ? "n1" : "n2" } } : command;
    fc.assert(
      fc.property(churnArb, (commands) => {
        runCommands(commands.map(onNodes), "n1");
      }),
      { numRuns: 100 },
    );
  });

  test("a commit recomputes only what the mutation touched", () => {
    const pods = Array.from({ length: 30 }, (_, i) => pod(`${i % 2 ? "x" : "y"}/p${i}`, [`10.0.${i % 2}.${i + 1}`], { app: `a${i % 3}` }));
    const w = world({
      pods,
      policies: [
        netpol("x/p", { podSelector: { matchLabels: { app: "a0" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a1" } } }] }] }),
        netpol("y/q", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] }),
      ],
    });
    const { compiler } = compileWorld(w);
    // A new pod in x with app=a2: no x policy peer matches it, and y/q's peer gains its identity.
    compiler.upsertPod(pod("x/new", ["10.0.1.99"], { app: "a2" }));
    const diff = compiler.commit();
    assert.deepEqual(compiler.lastCommitStats, { policies: 0, ipcacheKeys: 1, identitiesAdded: 1, identitiesRemoved: 0, endpoints: 16 });
    // y's pods keep their slot, which gains the new identity's entry in place; only the new endpoint is written.
    assert.deepEqual(diff.endpointUpserts.map(([key]) => key), ["x/new"]);
    const ySlot = compiler.endpointOf("y/p0")?.slot;
    const newIdentity = compiler.endpointOf("x/new")?.identity;
    assert.deepEqual(
      diff.policyUpserts.filter((entry) => entry.key.slot === ySlot).map((entry) => entry.key.identity),
      [newIdentity],
    );
    assert.deepEqual(diff.policyRemovals, []);
    assert.deepEqual(diff.ipcacheUpserts.map((e) => ipcacheKeyString(e.key)), ["10.0.1.99/32"]);
  });

  describe("a namespace relabelled, on a node", () => {
    // Local endpoints in y: y/l admits pods of prod namespaces, y/m only pods of y. x's pods are remote.
    const local = (p: PodInfo): PodInfo => ({ ...p, nodeName: "n1" });
    const remote = (p: PodInfo): PodInfo => ({ ...p, nodeName: "n2" });
    const w = world({
      namespaces: [ns("x", { env: "dev" }), ns("y", { env: "prod" })],
      pods: [remote(pod("x/a", ["10.0.0.1"], { app: "a" })), remote(pod("x/b", ["10.0.0.2"], { app: "b" })), local(pod("y/l", ["10.0.1.1"], { app: "l" })), local(pod("y/m", ["10.0.1.2"], { app: "m" }))],
      policies: [
        netpol("y/from-prod", { podSelector: { matchLabels: { app: "l" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { env: "prod" } } }] }] }),
        netpol("y/from-y", { podSelector: { matchLabels: { app: "m" } }, ingress: [{ from: [{ podSelector: {} }] }] }),
      ],
    });
    const allowed = (state: DesiredState, endpoint: string, remoteIp: string) =>
      lookupVerdict(state, { endpoint, direction: DIRECTION_INGRESS, remoteIp, protocol: "TCP", port: 80 }).allowed;

    test("into a label a local endpoint's peer selects: that endpoint's slot gains x's new identities, and the state equals compileWorld", () => {
      const { compiler } = compileWorld(w, { nodeName: "n1" });
      assert.equal(allowed(compiler.state(), "y/l", "10.0.0.1"), false);
      const relabelled = { ...w, namespaces: new Map([...w.namespaces, ["x", ns("x", { env: "prod" })]]) };
      compiler.upsertNamespace(ns("x", { env: "prod" }));
      const diff = compiler.commit();
      const state = compiler.state();
      assert.deepEqual(canonicalState(state), canonicalState(compileWorld(relabelled, { nodeName: "n1" }).state));
      assert.equal(allowed(state, "y/l", "10.0.0.1"), true);
      assert.equal(allowed(state, "y/m", "10.0.0.1"), false);
      // x's pods were dirty (new identities); of the local endpoints only y/l, whose rule targets them now.
      assert.deepEqual(compiler.lastCommitStats, { policies: 0, ipcacheKeys: 2, identitiesAdded: 2, identitiesRemoved: 2, endpoints: 3 });
      const lSlot = compiler.endpointOf("y/l")?.slot;
      assert.ok(diff.policyUpserts.length > 0 && diff.policyUpserts.every((entry) => entry.key.slot === lSlot));
    });

    test("in a label no local endpoint's peer reads: no local endpoint is recomputed, no policy entry written", () => {
      const { compiler } = compileWorld(w, { nodeName: "n1" });
      compiler.upsertNamespace(ns("x", { env: "staging" }));
      const diff = compiler.commit();
      // x's identities were renumbered (namespace labels are part of them): only x's remote pods were dirty.
      assert.deepEqual(compiler.lastCommitStats, { policies: 0, ipcacheKeys: 2, identitiesAdded: 2, identitiesRemoved: 2, endpoints: 2 });
      assert.deepEqual([diff.policyUpserts, diff.policyRemovals, diff.endpointUpserts], [[], [], []]);
      assert.equal(diff.ipcacheUpserts.length, 2);
    });
  });
});

// ---------------------------------------------------------------- slots changed in place

describe("slots changed in place", () => {
  // a1 and a2 are replicas (one slot); rules admit app=b with an allow, a port range, a Deny and an HTTP rule.
  const policies = [
    netpol("x/allow", { podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 80 }, { port: 8000, endPort: 8100 }] }] }),
    ebpf("x/deny", { selector: { matchLabels: { app: "a" } }, ingress: [{ action: "Deny", from: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 8080 }] }] }),
    ebpf("x/http", { selector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 9000 }], http: [{ method: "GET" }] }] }),
  ];
  const pods = [pod("x/a1", ["10.0.0.1"], { app: "a" }), pod("x/a2", ["10.0.0.2"], { app: "a" }), pod("x/b", ["10.0.0.3"], { app: "b" })];

  /** Commits, checks the state against a compile from scratch and the diff through the kernel-like maps, and returns the diff. */
  function commit(compiler: PolicyCompiler, maps: DiffModel, w: World): StateDiff {
    const diff = compiler.commit();
    maps.apply(diff);
    const state = compiler.state();
    maps.assertEquals(state);
    assert.deepEqual(canonicalState(state), canonicalState(compileWorld(w).state));
    return diff;
  }

  // Node-local numbers are negative in memory (identityInMemory): in-place changes must work on them too.
  for (const [numbers, identities] of [
    ["", () => new LocalIdentityAllocator()],
    [", numbered as a node's own", () => new LocalIdentityAllocator({ first: identityInMemory(FIRST_NODE_LOCAL_IDENTITY), last: -1 })],
  ] as const) {
    test(`a new identity the rules admit joins the replicas' slot in place; when it goes, only its entries leave${numbers}`, () => {
      const compiler = new PolicyCompiler({ identities: identities() });
      const maps = new DiffModel();
      const w = world({ pods, policies });
      for (const p of pods) compiler.upsertPod(p);
      for (const n of w.namespaces.values()) compiler.upsertNamespace(n);
      for (const p of policies) compiler.upsertPolicy(p);
      commit(compiler, maps, w);
      const slot = compiler.endpointOf("x/a1")?.slot;
      assert.equal(compiler.endpointOf("x/a2")?.slot, slot);
      const entriesBefore = maps.policy.size;

      const b2 = pod("x/b2", ["10.0.0.4"], { app: "b", version: "2" });
      compiler.upsertPod(b2);
      w.pods.set("x/b2", b2);
      const added = commit(compiler, maps, w);
      const identity = compiler.endpointOf("x/b2")?.identity;
      assert.deepEqual([compiler.endpointOf("x/a1")?.slot, compiler.endpointOf("x/a2")?.slot], [slot, slot]);
      assert.deepEqual(added.endpointUpserts.map(([key]) => key), ["x/b2"]);
      const inSlot = added.policyUpserts.filter((entry) => entry.key.slot === slot);
      assert.ok(inSlot.length > 0 && inSlot.every((entry) => entry.key.identity === identity), "only the new identity's entries are written to the slot");
      assert.deepEqual(added.policyRemovals, []);
      assert.equal(maps.policy.size, entriesBefore + added.policyUpserts.length);
      assert.ok(inSlot.some((entry) => entry.value.verdict === VERDICT_DENY), "its Deny entry too");
      assert.ok(compiler.httpView().policy.some((entry) => entry.key.identity === identity), "and its HTTP entry, for the proxy");
      for (const [port, allowed] of [[80, true], [8050, true], [8080, false], [81, false]] as const) {
        assert.equal(allows(w, "10.0.0.4", "10.0.0.1", "TCP", port), allowed, `b2 to a1:${port}`);
      }

      compiler.deletePod("x", "b2");
      w.pods.delete("x/b2");
      const removed = commit(compiler, maps, w);
      assert.deepEqual([compiler.endpointOf("x/a1")?.slot, compiler.endpointOf("x/a2")?.slot], [slot, slot]);
      assert.deepEqual(removed.endpointUpserts, []);
      assert.deepEqual(removed.policyUpserts, []);
      assert.deepEqual(
        removed.policyRemovals.map((key) => key.identity),
        inSlot.map(() => identity),
      );
      assert.equal(maps.policy.size, entriesBefore);
    });
  }

  test("when a slot's users move apart, the one whose change is in place keeps it and the other switches", () => {
    const open = [netpol("x/open", { podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: {} }] }] })];
    const compiler = new PolicyCompiler();
    const maps = new DiffModel();
    const w = world({ pods, policies: open });
    for (const p of pods) compiler.upsertPod(p);
    for (const n of w.namespaces.values()) compiler.upsertNamespace(n);
    for (const p of open) compiler.upsertPolicy(p);
    commit(compiler, maps, w);
    const slot = compiler.endpointOf("x/a1")?.slot;
    // a1 leaves the policy, and its new identity is one a2's rule admits.
    const a1 = pod("x/a1", ["10.0.0.1"], { app: "c" });
    compiler.upsertPod(a1);
    w.pods.set("x/a1", a1);
    const diff = commit(compiler, maps, w);
    assert.equal(compiler.endpointOf("x/a2")?.slot, slot);
    assert.notEqual(compiler.endpointOf("x/a1")?.slot, slot);
    const identity = compiler.endpointOf("x/a1")?.identity;
    assert.deepEqual(
      diff.policyUpserts.filter((entry) => entry.key.slot === slot).map((entry) => entry.key.identity),
      [identity],
    );
    assert.deepEqual(diff.endpointUpserts.map(([key]) => key), ["x/a1"]);
  });
});

// ---------------------------------------------------------------- pending identities

/**
 * An allocator that knows only the numbers in its table, as an agent knows
 * only the operator's: an unknown key is pending and remembered, and
 * `publish` numbers every key asked for so far (lowest free first, never
 * reusing one), as the operator would.
 */
class TableAllocator extends TextKeyedAllocator {
  readonly table = new Map<string, number>();
  readonly asked = new Set<string>();
  readonly references = new Map<string, number>();
  allocate(key: string): number | undefined {
    const id = this.table.get(key);
    if (id === undefined) {
      this.asked.add(key);
      return undefined;
    }
    this.references.set(key, (this.references.get(key) ?? 0) + 1);
    return id;
  }
  release(key: string): void {
    const count = this.references.get(key);
    assert.ok(count, `release of unreferenced key ${key}`);
    if (count === 1) this.references.delete(key);
    else this.references.set(key, count - 1);
  }
  publish(): string[] {
    const published = [...this.asked].filter((key) => !this.table.has(key));
    for (const key of published) this.table.set(key, 256 + this.table.size);
    this.asked.clear();
    return published;
  }
}

describe("pending identities", () => {
  const only = (w: World, state: DesiredState, src: string, dst: string): boolean =>
    explainPacket(state, w, { src: { ip: src }, dst: { ip: dst }, protocol: "TCP", port: 80 }).allowed;

  test("a pending address is left out of the ipcache, so no pod-selector rule matches it; it is enforced once numbered", () => {
    const allocator = new TableAllocator();
    const compiler = new PolicyCompiler({ identities: allocator });
    const w = world({
      pods: [pod("x/a", ["10.0.0.1"]), pod("x/b", ["10.0.0.2"])],
      policies: [netpol("x/p", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })],
    });
    for (const n of w.namespaces.values()) compiler.upsertNamespace(n);
    for (const p of w.pods.values()) compiler.upsertPod(p);
    for (const p of w.policies) compiler.upsertPolicy(p);
    compiler.commit();
    let state = compiler.state();
    assert.equal(compiler.pendingIdentityKeys().length, 2);
    assert.equal(state.ipcache.size, 0);
    assert.equal(state.endpoints.get("x/a")?.flags, EP_ISOLATED_INGRESS | EP_AUDIT_ISOLATED_INGRESS | EP_NO_ANY_PEER_INGRESS, "isolation does not wait for identities");
    assert.ok(!only(w, state, "10.0.0.2", "10.0.0.1"), "b is not recognised as b yet");

    assert.equal(compiler.commit().ipcacheUpserts.length, 0, "nothing to retry until told");
    compiler.identitiesChanged(allocator.publish());
    const diff = compiler.commit();
    state = compiler.state();
    assert.deepEqual(compiler.pendingIdentityKeys(), []);
    assert.deepEqual(diff.ipcacheUpserts.map((e) => ipcacheKeyString(e.key)).sort(), ["10.0.0.1/32", "10.0.0.2/32"]);
    assert.ok(only(w, state, "10.0.0.2", "10.0.0.1"));
    assert.deepEqual(canonicalState(state), canonicalState(compileWorld(w).state));
  });

  test("a relabelled pod keeps its previous identity while the new one is pending; a new owner of an address never inherits one", () => {
    const allocator = new TableAllocator();
    const compiler = new PolicyCompiler({ identities: allocator });
    compiler.upsertNamespace(ns("x"));
    compiler.upsertPod(pod("x/b", ["10.0.0.2"]));
    compiler.commit();
    compiler.identitiesChanged(allocator.publish());
    compiler.commit();
    const before = compiler.state().ipcache.get("10.0.0.2/32")?.value.identity;
    assert.ok(before !== undefined && before >= 256);

    compiler.upsertPod(pod("x/b", ["10.0.0.2"], { role: "new" }));
    compiler.commit();
    assert.equal(compiler.state().ipcache.get("10.0.0.2/32")?.value.identity, before, "same owner: previous labels until numbered");
    assert.equal(compiler.pendingIdentityKeys().length, 1);

    compiler.deletePod("x", "b");
    compiler.upsertPod(pod("x/c", ["10.0.0.2"]));
    const diff = compiler.commit();
    assert.deepEqual(diff.ipcacheRemovals.map(ipcacheKeyString), ["10.0.0.2/32"], "another pod on b's address gets no entry while pending");
    assert.deepEqual(allocator.references, new Map(), "b's identity was released");

    compiler.identitiesChanged(allocator.publish());
    compiler.commit();
    const after = compiler.state().ipcache.get("10.0.0.2/32")?.value.identity;
    assert.ok(after !== undefined && after !== before);
    assert.deepEqual(compiler.pendingIdentityKeys(), []);
  });

  test("a pending host address in a policy prefix gets the reserved host identity", () => {
    const allocator = new TableAllocator();
    const compiler = new PolicyCompiler({ identities: allocator });
    compiler.upsertPolicy(netpol("x/p", { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "192.168.0.0/16" } }] }], policyTypes: ["Egress"] }));
    compiler.setHostIPs(["192.168.1.1"]);
    compiler.commit();
    assert.deepEqual(compiler.state().ipcache.get("192.168.1.1/32")?.value, { identity: IDENTITY_HOST, flags: IPCACHE_HOST });
    compiler.identitiesChanged(allocator.publish());
    compiler.commit();
    assert.ok((compiler.state().ipcache.get("192.168.1.1/32")?.value.identity ?? 0) >= 256);
  });

  test("a key whose number changed in the table is renumbered everywhere it is used", () => {
    const allocator = new TableAllocator();
    const compiler = new PolicyCompiler({ identities: allocator });
    const w = world({
      pods: [pod("x/a", ["10.0.0.1"]), pod("x/b", ["10.0.0.2"]), pod("x/b2", ["10.0.0.3"], { pod: "b" })],
      policies: [netpol("x/p", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })],
    });
    for (const n of w.namespaces.values()) compiler.upsertNamespace(n);
    for (const p of w.pods.values()) compiler.upsertPod(p);
    for (const p of w.policies) compiler.upsertPolicy(p);
    compiler.commit();
    compiler.identitiesChanged(allocator.publish());
    compiler.commit();
    const bKey = [...allocator.table].find(([, id]) => id === compiler.state().ipcache.get("10.0.0.2/32")?.value.identity)?.[0] as string;
    allocator.table.set(bKey, 999);
    compiler.identitiesChanged([bKey]);
    const diff = compiler.commit();
    const state = compiler.state();
    assert.deepEqual(diff.ipcacheUpserts.map((e) => [ipcacheKeyString(e.key), e.value.identity]).sort(), [["10.0.0.2/32", 999], ["10.0.0.3/32", 999]]);
    assert.ok(only(w, state, "10.0.0.2", "10.0.0.1"), "rules follow the new number");
    assert.ok([...state.policy.values()].some((e) => e.key.identity === 999));
    assert.ok(![...state.policy.values()].some((e) => state.identities.get(e.key.identity) === undefined && e.key.identity !== IDENTITY_ANY));
    assert.deepEqual(canonicalState(state), canonicalState(compileWorld(w).state));
    assert.equal(allocator.references.get(bKey), 1);
  });

  test("two keys that swap numbers in one commit: a number both gone and new never changes a slot in place", () => {
    const allocator = new TableAllocator();
    const compiler = new PolicyCompiler({ identities: allocator });
    const maps = new DiffModel();
    // a admits b, not c: after the swap, b's entries are under c's old number, which c's packets carry until the ipcache write.
    const w = world({
      pods: [pod("x/a", ["10.0.0.1"]), pod("x/b", ["10.0.0.2"]), pod("x/c", ["10.0.0.3"])],
      policies: [netpol("x/p", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })],
    });
    for (const n of w.namespaces.values()) compiler.upsertNamespace(n);
    for (const p of w.pods.values()) compiler.upsertPod(p);
    for (const p of w.policies) compiler.upsertPolicy(p);
    maps.apply(compiler.commit());
    compiler.identitiesChanged(allocator.publish());
    maps.apply(compiler.commit());
    const keyOf = (ip: string) => [...allocator.table].find(([, id]) => id === compiler.state().ipcache.get(`${ip}/32`)?.value.identity) as [string, number];
    const [bKey, bId] = keyOf("10.0.0.2");
    const [cKey, cId] = keyOf("10.0.0.3");
    const slot = compiler.endpointOf("x/a")?.slot;
    allocator.table.set(bKey, cId);
    allocator.table.set(cKey, bId);
    compiler.identitiesChanged([bKey, cKey]);
    const diff = compiler.commit();
    maps.apply(diff);
    maps.assertEquals(compiler.state());
    assert.notEqual(compiler.endpointOf("x/a")?.slot, slot, "a new slot, written before a switches to it");
    assert.equal(maps.inPlace, 0);
    assert.ok(only(w, compiler.state(), "10.0.0.2", "10.0.0.1") && !only(w, compiler.state(), "10.0.0.3", "10.0.0.1"));
    assert.deepEqual(canonicalState(compiler.state()), canonicalState(compileWorld(w).state));
  });

  test("after numbering every pending key, incremental state equals compileWorld", () => {
    fc.assert(
      fc.property(commandsArb(30), (commands) => {
        const allocator = new TableAllocator();
        const compiler = new PolicyCompiler({ identities: allocator });
        const model = new WorldModel();
        const maps = new DiffModel();
        for (const command of [...commands, { op: "commit" as const }]) {
          if (command.op !== "commit") {
            model.run(compiler, command);
            continue;
          }
          maps.apply(compiler.commit());
          for (const entry of compiler.state().ipcache.values()) {
            const { identity } = entry.value;
            assert.ok(identity === IDENTITY_HOST || compiler.state().identities.has(identity), `ipcache ${ipcacheKeyString(entry.key)} has a described identity`);
          }
          compiler.identitiesChanged(allocator.publish());
          maps.apply(compiler.commit());
          const state = compiler.state();
          maps.assertEquals(state);
          assert.deepEqual(compiler.pendingIdentityKeys(), []);
          assert.deepEqual(canonicalState(state), canonicalState(compileWorld(model.world()).state));
          const inUse = new Set([...state.ipcache.values()].map((e) => e.value.identity).filter((id) => id >= 256));
          assert.equal(allocator.references.size, inUse.size);
        }
      }),
      { numRuns: 100 },
    );
  });
});

test("identityKeyFields reads back every kind of key the compiler builds", () => {
  const compiler = new PolicyCompiler({ identities: new TableAllocator() });
  compiler.upsertNamespace(ns("x", { team: "t" }));
  compiler.upsertPod(pod("x/a", ["10.0.0.1"], {}, [{ name: "http", port: 80, protocol: "TCP" }]));
  compiler.upsertPolicy(netpol("x/p", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }] }));
  compiler.setHostIPs(["10.9.9.9"]);
  compiler.commit();
  const fields = compiler.pendingIdentityKeys().map((key) => identityKeyFields(key));
  assert.deepEqual(fields, [
    { kind: "cidr", cidr: "10.0.0.0/8" },
    { kind: "host", cidr: "10.0.0.0/8" },
    {
      kind: "pod",
      namespace: "x",
      namespaceLabels: { "kubernetes.io/metadata.name": "x", team: "t" },
      labels: { pod: "a" },
      namedPorts: [{ name: "http", port: 80, protocol: "TCP" }],
      cidr: "10.0.0.0/8",
    },
  ]);
  assert.throws(() => identityKeyFields('["pod"]'), { name: "IdentityKeyError", message: 'Cannot read identity key "[\\"pod\\"]": it is not a pod, host or cidr key' });
});
