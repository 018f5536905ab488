import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { policyKeyString, VERDICT_ALLOW, type DesiredState, type EndpointState, type PolicyEntry } from "../policy/desired-state.ts";
import { FAIL_CLOSED_SLOT, fitPolicyMap } from "./policy-capacity.ts";

function entries(slot: number, count: number): [string, PolicyEntry][] {
  return Array.from({ length: count }, (_, i): [string, PolicyEntry] => {
    const entry: PolicyEntry = { key: { slot, identity: 256 + i, direction: 0, protocol: 6, port: 80, portPrefixLen: 16 }, value: { verdict: VERDICT_ALLOW, auditVerdict: VERDICT_ALLOW, flags: 0, ruleId: 1, auditRuleId: 1 } };
    return [policyKeyString(entry.key), entry];
  });
}

function endpoint(slot: number, endpointId: number): EndpointState {
  return { endpointId, identity: 300 + endpointId, slot, flags: 1 };
}

/** Endpoints by pod key with their slot, and how many entries each slot has. */
function state(endpoints: Record<string, number>, slots: Record<number, number>): DesiredState {
  return {
    endpoints: new Map(Object.entries(endpoints).map(([pod, slot], i) => [pod, endpoint(slot, i + 1)])),
    policy: new Map(Object.entries(slots).flatMap(([slot, count]) => entries(Number(slot), count))),
    ipcache: new Map(),
    rules: new Map(),
    identities: new Map(),
    tcpLimits: new Map(),
  };
}

describe("fitPolicyMap", () => {
  it("keeps endpoints in pod-key order while they fit, counts a shared slot once, lets a smaller later one in, and fails the rest closed with their flags", () => {
    // x/a and x/d share slot 1 (4 entries); x/b needs 5, x/c 2, x/e none (not isolated).
    const desired = state({ "x/d": 1, "x/b": 2, "x/a": 1, "x/c": 3, "x/e": 4 }, { 1: 4, 2: 5, 3: 2 });
    const fit = fitPolicyMap(desired, 7);
    assert.deepEqual(fit.failedClosed, ["x/b"]);
    assert.equal(fit.needed, 11);
    assert.deepEqual([...fit.state.policy.values()].map((e) => e.key.slot).sort(), [1, 1, 1, 1, 3, 3]);
    assert.deepEqual(fit.state.endpoints.get("x/b"), { ...endpoint(2, 2), slot: FAIL_CLOSED_SLOT });
    for (const pod of ["x/a", "x/c", "x/d", "x/e"]) assert.deepEqual(fit.state.endpoints.get(pod), desired.endpoints.get(pod), pod);
  });

  it("keeps everything when the state fits, and fails every isolated endpoint closed when nothing does", () => {
    const desired = state({ "x/a": 1, "x/b": 2 }, { 1: 3, 2: 3 });
    assert.deepEqual(fitPolicyMap(desired, 6).failedClosed, []);
    const none = fitPolicyMap(desired, 2);
    assert.deepEqual(none.failedClosed, ["x/a", "x/b"]);
    assert.equal(none.state.policy.size, 0);
  });
});
