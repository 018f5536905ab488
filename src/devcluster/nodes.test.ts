import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { devNodeSpec, MAX_NODES } from "./nodes.ts";

describe("devNodeSpec", () => {
  test("gives node i dual-stack pod CIDRs numbered i", () => {
    assert.deepEqual(devNodeSpec(1), {
      name: "palisade-node-1",
      podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
      internalIPs: ["10.240.0.1", "fd00:10:240::1"],
    });
    assert.deepEqual(devNodeSpec(MAX_NODES).podCIDRs, ["10.244.254.0/24", "fd00:10:244:254::/64"]);
  });

  test("refuses indexes with no /24 left", () => {
    assert.throws(() => devNodeSpec(0), /dev node 0: the index must be 1 to 254/);
    assert.throws(() => devNodeSpec(255), /dev node 255/);
    assert.throws(() => devNodeSpec(1.5), /dev node 1.5/);
  });
});
