import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DIRECTION_EGRESS,
  DIRECTION_INGRESS,
  EP_AUDIT_ISOLATED_INGRESS,
  EP_ISOLATED_EGRESS,
  EP_ISOLATED_INGRESS,
  IDENTITY_ANY,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  IPCACHE_HOST,
  ipcacheKeyOf,
  policyKeyString,
  PROTOCOL_NUMBERS,
  VERDICT_ALLOW,
  VERDICT_DENY,
  VERDICT_NONE,
} from "./desired-state.ts";
import type { DesiredState, Direction, EndpointState, IpcacheEntry, PolicyEntry, PolicyVerdict } from "./desired-state.ts";
import { parseCidr } from "./ip.ts";
import { explainPacket, lookupIpcache, lookupPolicy, lookupVerdict } from "./lookup.ts";
import type { LookupQuery } from "./lookup.ts";
import type { PodInfo, World } from "./world.ts";

const TCP = PROTOCOL_NUMBERS.TCP;
const UDP = PROTOCOL_NUMBERS.UDP;
const POD_A = 300;
const POD_B = 301;
const NET_10 = 302;

function entry(
  slot: number,
  identity: number,
  direction: Direction,
  protocol: number,
  port: number,
  portPrefixLen: number,
  verdict: PolicyVerdict,
  ruleId: number,
  audit: [PolicyVerdict, number] = [verdict, ruleId],
): PolicyEntry {
  return {
    key: { slot, identity, direction, protocol, port, portPrefixLen },
    value: { verdict, auditVerdict: audit[0], ruleId, auditRuleId: audit[1], flags: 0 },
  };
}

function ipcacheEntry(cidr: string, identity: number, flags = 0): [string, IpcacheEntry] {
  return [cidr, { key: ipcacheKeyOf(parseCidr(cidr)), value: { identity, flags } }];
}

/** A hand-written state: what the kernel maps would hold. */
function handState(): DesiredState {
  const ipcache = [
    ipcacheEntry("10.0.0.0/8", NET_10),
    ipcacheEntry("10.0.0.1/32", POD_A),
    ipcacheEntry("10.0.0.2/32", POD_B),
    ipcacheEntry("10.9.0.1/32", IDENTITY_HOST, IPCACHE_HOST),
    ipcacheEntry("fd00::1/128", POD_A),
  ];
  const endpoints: [string, EndpointState][] = [
    ["x/a", { endpointId: 1, identity: POD_A, slot: 7, flags: EP_ISOLATED_INGRESS | EP_AUDIT_ISOLATED_INGRESS }],
    ["x/b", { endpointId: 2, identity: POD_B, slot: 8, flags: EP_AUDIT_ISOLATED_INGRESS }],
    ["x/c", { endpointId: 3, identity: 0, slot: 9, flags: EP_ISOLATED_EGRESS }],
  ];
  const policy: PolicyEntry[] = [
    // Slot 7: from pod b, TCP 80 allowed, TCP 1024-2047 denied by rule 3, everything else allowed by rule 4.
    entry(7, POD_B, DIRECTION_INGRESS, TCP, 80, 16, VERDICT_ALLOW, 2),
    entry(7, POD_B, DIRECTION_INGRESS, TCP, 1024, 6, VERDICT_DENY, 3),
    entry(7, POD_B, DIRECTION_INGRESS, 0, 0, 0, VERDICT_ALLOW, 4),
    // From anyone: UDP any port allowed by rule 5; TCP 1030 denied by rule 6.
    entry(7, IDENTITY_ANY, DIRECTION_INGRESS, UDP, 0, 0, VERDICT_ALLOW, 5),
    entry(7, IDENTITY_ANY, DIRECTION_INGRESS, TCP, 1030, 16, VERDICT_DENY, 6),
    entry(7, IDENTITY_ANY, DIRECTION_INGRESS, TCP, 80, 16, VERDICT_ALLOW, 8),
    // From 10/8 (class identity), audit-only deny on TCP 22 by rule 7.
    entry(7, NET_10, DIRECTION_INGRESS, TCP, 22, 16, VERDICT_NONE, 0, [VERDICT_DENY, 7]),
    // Slot 8: an audit-mode allow of pod a only.
    entry(8, POD_A, DIRECTION_INGRESS, 0, 0, 0, VERDICT_NONE, 0, [VERDICT_ALLOW, 9]),
    // Slot 9: egress to WORLD is allowed by an any-peer rule only on TCP 443.
    entry(9, IDENTITY_ANY, DIRECTION_EGRESS, TCP, 443, 16, VERDICT_ALLOW, 10),
  ];
  return {
    ipcache: new Map(ipcache),
    endpoints: new Map(endpoints),
    policy: new Map(policy.map((e) => [policyKeyString(e.key), e])),
    rules: new Map(),
    identities: new Map(),
    tcpLimits: new Map(),
  };
}

describe("lookupIpcache", () => {
  const state = handState();
  test("returns the most specific covering entry", () => {
    assert.equal(lookupIpcache(state, "10.0.0.1")?.value.identity, POD_A);
    assert.equal(lookupIpcache(state, "10.0.0.3")?.value.identity, NET_10);
    assert.equal(lookupIpcache(state, "fd00::1")?.value.identity, POD_A);
  });
  test("misses outside every entry, and families never mix", () => {
    assert.equal(lookupIpcache(state, "11.0.0.1"), undefined);
    assert.equal(lookupIpcache(state, "::ffff:10.0.0.1"), undefined);
    assert.equal(lookupIpcache(state, "fd00::2"), undefined);
  });
});

describe("lookupPolicy", () => {
  const state = handState();
  const at = (identity: number, protocol: number, port: number) =>
    lookupPolicy(state, { slot: 7, identity, direction: DIRECTION_INGRESS, protocol, port });
  test("the longest port prefix wins, then any port of the protocol, then any protocol", () => {
    assert.equal(at(POD_B, TCP, 80)?.ruleId, 2);
    assert.equal(at(POD_B, TCP, 1024)?.ruleId, 3);
    assert.equal(at(POD_B, TCP, 2047)?.ruleId, 3);
    assert.equal(at(POD_B, TCP, 2048)?.ruleId, 4);
    assert.equal(at(POD_B, UDP, 1500)?.ruleId, 4);
    assert.equal(at(POD_B, PROTOCOL_NUMBERS.ICMP, 0)?.ruleId, 4);
    assert.equal(at(IDENTITY_ANY, UDP, 9)?.ruleId, 5);
  });
  test("misses: another slot, direction, identity or an uncovered protocol", () => {
    assert.equal(at(IDENTITY_ANY, TCP, 81), undefined);
    assert.equal(at(POD_A, TCP, 80), undefined);
    assert.equal(lookupPolicy(state, { slot: 8, identity: POD_B, direction: DIRECTION_INGRESS, protocol: TCP, port: 80 }), undefined);
    assert.equal(lookupPolicy(state, { slot: 7, identity: POD_B, direction: DIRECTION_EGRESS, protocol: TCP, port: 80 }), undefined);
  });
});

describe("lookupVerdict", () => {
  const state = handState();
  const q = (endpoint: string, remoteIp: string, protocol: LookupQuery["protocol"], port: number, direction: Direction = DIRECTION_INGRESS) =>
    lookupVerdict(state, { endpoint, direction, remoteIp, protocol, port });

  test("no endpoint: fail closed", () => {
    assert.deepEqual(q("x/none", "10.0.0.2", "TCP", 80), {
      allowed: false,
      ruleId: 0,
      reason: "no-endpoint",
      tcpStrict: false,
      tcpLimited: false,
      remoteIdentity: 0,
      audit: { allowed: false, ruleId: 0, reason: "no-endpoint", tcpStrict: false, tcpLimited: false },
      proxied: false,
    });
  });
  test("ingress from a host address is allowed before any policy; egress to it is not special", () => {
    assert.equal(q("x/a", "10.9.0.1", "TCP", 1030).reason, "host");
    const egress = q("x/c", "10.9.0.1", "TCP", 80, DIRECTION_EGRESS);
    assert.deepEqual([egress.allowed, egress.reason, egress.remoteIdentity], [false, "default-deny", IDENTITY_HOST]);
  });
  test("a deny in either lookup wins; the identity's entry names the rule first", () => {
    assert.deepEqual([q("x/a", "10.0.0.2", "TCP", 1030).reason, q("x/a", "10.0.0.2", "TCP", 1030).ruleId], ["policy-deny", 3]);
    assert.deepEqual([q("x/a", "10.5.5.5", "TCP", 1030).reason, q("x/a", "10.5.5.5", "TCP", 1030).ruleId], ["policy-deny", 6]);
    assert.deepEqual([q("x/a", "10.0.0.2", "TCP", 80).reason, q("x/a", "10.0.0.2", "TCP", 80).ruleId], ["policy-allow", 2]);
    assert.deepEqual([q("x/a", "10.5.5.5", "TCP", 80).reason, q("x/a", "10.5.5.5", "TCP", 80).ruleId], ["policy-allow", 8]);
  });
  test("allow from the any-peer entry; default deny when isolated and nothing matches", () => {
    assert.equal(q("x/a", "192.0.2.1", "UDP", 53).reason, "policy-allow");
    const miss = q("x/a", "192.0.2.1", "TCP", 22);
    assert.deepEqual([miss.allowed, miss.reason, miss.remoteIdentity], [false, "default-deny", IDENTITY_WORLD]);
    assert.equal(q("x/a", "fd00::1", "ICMP", 0).reason, "default-deny");
    assert.equal(q("x/a", "10.0.0.2", "ICMP", 7).reason, "policy-allow", "ICMP ignores the port and meets the any-protocol entry");
  });
  test("audit verdicts use the audit fields and the audit isolation flag", () => {
    const sshFromNet = q("x/a", "10.5.5.5", "TCP", 22);
    assert.deepEqual([sshFromNet.allowed, sshFromNet.reason], [false, "default-deny"]);
    assert.deepEqual(sshFromNet.audit, { allowed: false, ruleId: 7, reason: "policy-deny", tcpStrict: false, tcpLimited: false });
    const notIsolated = q("x/b", "10.0.0.3", "TCP", 80);
    assert.deepEqual([notIsolated.allowed, notIsolated.reason], [true, "not-isolated"]);
    assert.deepEqual(notIsolated.audit, { allowed: false, ruleId: 0, reason: "default-deny", tcpStrict: false, tcpLimited: false });
    assert.deepEqual(q("x/b", "10.0.0.1", "SCTP", 9).audit, { allowed: true, ruleId: 9, reason: "policy-allow", tcpStrict: false, tcpLimited: false });
  });
  test("egress isolation is per direction", () => {
    assert.equal(q("x/c", "192.0.2.1", "TCP", 443, DIRECTION_EGRESS).reason, "policy-allow");
    assert.equal(q("x/c", "192.0.2.1", "TCP", 444, DIRECTION_EGRESS).reason, "default-deny");
    assert.equal(q("x/c", "192.0.2.1", "TCP", 444, DIRECTION_INGRESS).reason, "not-isolated");
  });
});

describe("explainPacket", () => {
  const state = handState();
  const pod = (key: string, ips: string[]): [string, PodInfo] => {
    const [namespace, name] = key.split("/") as [string, string];
    return [key, { namespace, name, labels: {}, ips, namedPorts: [] }];
  };
  const world: World = {
    namespaces: new Map(),
    pods: new Map([pod("x/a", ["10.0.0.1", "fd00::1"]), pod("x/b", ["10.0.0.2"]), pod("x/c", ["10.0.0.3"]), pod("y/remote", ["10.0.0.4"])]),
    policies: [],
    hostIPs: ["10.9.0.1"],
  };
  const packet = (src: string, dst: string, port = 80) => explainPacket(state, world, { src: { ip: src }, dst: { ip: dst }, protocol: "TCP", port });

  test("egress at the source pod and ingress at the destination pod", () => {
    const both = packet("10.0.0.1", "10.0.0.2");
    assert.equal(both.egress?.endpoint, "x/a");
    assert.equal(both.ingress?.endpoint, "x/b");
    assert.deepEqual([both.allowed, both.auditAllowed], [true, true]);
    const denied = packet("10.0.0.2", "10.0.0.1", 1030);
    assert.deepEqual([denied.allowed, denied.ingress?.reason, denied.egress?.reason], [false, "policy-deny", "not-isolated"]);
  });
  test("ends that are not pods, or pods without an endpoint here, are not checked", () => {
    const fromOutside = packet("192.0.2.1", "10.0.0.1", 22);
    assert.equal(fromOutside.egress, undefined);
    assert.equal(fromOutside.ingress?.reason, "default-deny");
    const toRemotePod = packet("10.0.0.3", "10.0.0.4", 443);
    assert.deepEqual([toRemotePod.allowed, toRemotePod.ingress], [true, undefined]);
    assert.equal(packet("10.9.0.1", "10.0.0.1", 22).ingress?.reason, "host");
  });
  test("a pod's packets to itself stay inside it", () => {
    assert.deepEqual(packet("10.0.0.1", "10.0.0.1", 22), { allowed: true, auditAllowed: true });
  });
  test("audit verdict of the packet", () => {
    const audited = packet("10.0.0.3", "10.0.0.2");
    assert.deepEqual([audited.allowed, audited.auditAllowed], [false, false]);
    assert.equal(audited.egress?.reason, "default-deny");
    const auditOnly = packet("10.9.9.9", "10.0.0.2");
    assert.deepEqual([auditOnly.allowed, auditOnly.auditAllowed], [true, false]);
  });
});
