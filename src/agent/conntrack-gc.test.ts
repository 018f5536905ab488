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
