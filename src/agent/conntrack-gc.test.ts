import assert from "node:assert/strict";
import { test } from "node:test";
import { jsonLogger } from "../k8s/logger.ts";
import { MemoryDatapath } from "../../test/lib/memory-datapath.ts";
import { ConntrackCollector } from "./conntrack-gc.ts";

test("a failed collection is logged as a warning and the next one runs as usual", () => {
  const lines: Record<string, unknown>[] = [];
  const datapath = new MemoryDatapath();
  const gc = new ConntrackCollector(datapath, jsonLogger("debug", {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)));
  datapath.conntrackGc = () => {
    throw new Error("map gone");
  };
  assert.equal(gc.collect(), 0);
  assert.deepEqual(lines.map((l) => l["msg"]), ["Cannot collect expired conntrack entries"]);
  assert.deepEqual(lines[0]?.["err"], { type: "Error", message: "map gone" });
  datapath.conntrackGc = () => 3;
  assert.equal(gc.collect(), 3);
  assert.equal(lines[1]?.["deleted"], 3);
});

test("each collection recounts the sources of limited rules on what conntrack still holds, after deleting the expired entries", () => {
  const datapath = new MemoryDatapath();
  const gc = new ConntrackCollector(datapath, jsonLogger("warn", {}, () => {}));
  const key = (saddr: string, sport: number) => ({ family: 4 as const, saddr, daddr: "10.0.0.2", sport, dport: 80, protocol: 6, direction: 0 as const, endpointId: 1 });
  const value = { expiresNs: 100n, packets: 1n, bytes: 60n, revision: 1, ruleId: 7, remoteIdentity: 2, tcpFlags: 1, tcpStrict: false, counted: true };
  datapath.tcpLimits.set(7, { maxConnections: 2, rate: 0, burst: 0 });
  datapath.conntrack = [1000, 1001].map((sport) => ({ key: key("10.0.0.9", sport), value, flow: key("10.0.0.9", sport) }));
  const source = { ruleId: 7, family: 4 as const, saddr: "10.0.0.9" };
  // The kernel counted a third flow whose entry the LRU evicted: the source is stuck at its limit.
  datapath.tcpSources.set("7/10.0.0.9", [source, { fullAtNs: 0n, conns: 3n }]);
  datapath.conntrackGc = () => {
    datapath.conntrack = datapath.conntrack.slice(1); // one entry expired
    return 1;
  };
  assert.equal(gc.collect(), 1);
  assert.deepEqual(datapath.tcpSources.get("7/10.0.0.9"), [source, { fullAtNs: 0n, conns: 1n }], "the leaked units are given back, the expired flow's too");
  datapath.conntrack = [];
  gc.collect();
  assert.equal(datapath.tcpSources.size, 0, "an idle source goes");
});

test("a failed recount is logged and the collection still counts its deletions", () => {
  const lines: Record<string, unknown>[] = [];
  const datapath = new MemoryDatapath();
  const gc = new ConntrackCollector(datapath, jsonLogger("debug", {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)));
  datapath.conntrackGc = () => 2;
  datapath.recountTcpSources = () => {
    throw new Error("map gone");
  };
  assert.equal(gc.collect(), 2);
  assert.deepEqual(lines.map((l) => l["msg"]), ["Collected expired conntrack entries", "Cannot recount TCP connection limits' sources"]);
});
