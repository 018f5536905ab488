import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FlowEvent } from "../datapath/abi.ts";
import { FlowLogger, logFlows } from "./flow-log.ts";
import { jsonLogger } from "../k8s/logger.ts";
import { MemoryDatapath } from "../../test/lib/memory-datapath.ts";

function event(kind: FlowEvent["kind"]): FlowEvent {
  return {
    timestampNs: 1n,
    endpointId: 7,
    ifindex: 3,
    remoteIdentity: 256,
    ruleId: 4,
    family: 4,
    src: "10.0.0.2",
    dst: "10.0.0.1",
    sport: 40000,
    dport: 80,
    protocol: 6,
    direction: "ingress",
    kind,
    reason: kind === "denied" ? "policy-deny" : "policy-allow",
    reasonCode: kind === "denied" ? 16 : 1,
    packetLen: 60,
  } as FlowEvent;
}

describe("FlowLogger", () => {
  it("logs denials with pod and rule, skips allowed flows, and rate-limits", () => {
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const log = jsonLogger("info", {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const flows = new FlowLogger(
      log,
      {
        podOf: (id) => (id === 7 ? "x/a" : undefined),
        ruleOf: (id) => (id === 4 ? { kind: "NetworkPolicy", namespace: "x", name: "deny", direction: "Ingress", index: 0, action: "Deny", mode: "Enforce" } : undefined),
      },
      { ratePerSecond: 1, burst: 2, now: () => now },
    );
    flows.record(event("allowed"));
    assert.equal(lines.length, 0);
    for (let i = 0; i < 5; i++) flows.record(event("denied"));
    assert.equal(lines.length, 2);
    assert.equal(flows.suppressed, 3);
    assert.equal(lines[0]?.["pod"], "x/a");
    assert.equal(lines[0]?.["policy"], "x/deny");
    assert.equal(lines[0]?.["rule"], "ingress[0]");
    assert.equal(lines[0]?.["protocol"], "TCP");
    now = 1000;
    flows.record(event("audit"));
    assert.equal(lines.length, 4);
    assert.equal(lines[2]?.["suppressed"], 3);
    assert.equal(lines[3]?.["msg"], "Flow would be denied (audit)");
  });

  it("logs the datapath's events until the subscription is closed", () => {
    const lines: Record<string, unknown>[] = [];
    const datapath = new MemoryDatapath();
    const subscription = logFlows(datapath, jsonLogger("info", {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)), {
      podOf: () => "x/a",
      ruleOf: () => undefined,
    });
    datapath.emit(event("denied"));
    subscription.close();
    datapath.emit(event("denied"));
    assert.deepEqual(lines.map((l) => [l["msg"], l["pod"]]), [["Flow denied", "x/a"]]);
  });
});
