import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { devNodeIndex, devNodeSpec, MAX_NODES } from "./nodes.ts";

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

describe("devNodeIndex", () => {
  test("reads back the index of every dev node's name", () => {
    for (const index of [1, 2, 12, MAX_NODES]) assert.equal(devNodeIndex(devNodeSpec(index).name), index);
  });

  test("is undefined for names no dev node has", () => {
    for (const name of ["worker-1", "palisade-node-", "palisade-node-0", "palisade-node-01", "palisade-node-1.5", "palisade-node-255", "palisade-node-2x"]) {
      assert.equal(devNodeIndex(name), undefined, name);
    }
  });
});
