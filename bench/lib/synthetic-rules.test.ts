import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { peerAddress, syntheticRule } from "./synthetic-rules.ts";

describe("synthetic rules", () => {
  test("every (peer, port, slot) is distinct and rule 0 uses the rotated peer", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const rule = syntheticRule(i, 7, 3);
      seen.add(`${rule.peer}/${rule.port}/${rule.slotOffset}`);
    }
    assert.equal(seen.size, 20_000);
    assert.deepEqual(syntheticRule(0, 1000, 500), { peer: 500, port: 1024, slotOffset: 0 });
    assert.deepEqual(syntheticRule(10 * 64_000, 10), { peer: 0, port: 1024, slotOffset: 1 });
  });

  test("peer addresses count up from 10.128.0.0", () => {
    assert.equal(peerAddress(0), "10.128.0.0");
    assert.equal(peerAddress(258), "10.128.1.2");
    assert.equal(peerAddress(65_536), "10.129.0.0");
  });
});
