import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_NODES, NETWORK_SLOTS, devNetwork, devNodeIndex, devNodeSpec, isSlotNetns, isSlotUplink, nodeNetnsIndex, sandboxNetns } from "./dev-network.ts";

describe("dev network slots", () => {
  test("slot 0 has the addresses and names of the README", () => {
    const network = devNetwork(0);
    assert.deepEqual(network, { slot: 0, bridge: "palisade0", bridgeAddresses: ["10.240.0.254", "fd00:10:240::fe"], pinBase: "/sys/fs/bpf/palisade-dev" });
    assert.deepEqual(devNodeSpec(network, 1), {
      name: "palisade-node-1",
      index: 1,
      podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
      internalIPs: ["10.240.0.1", "fd00:10:240::1"],
      netns: "palisade-node-1",
      uplink: "pl-node1",
      pinRoot: "/sys/fs/bpf/palisade-dev/palisade-node-1",
    });
    assert.deepEqual(devNodeSpec(network, MAX_NODES).podCIDRs, ["10.244.253.0/24", "fd00:10:244:253::/64"]);
  });

  test("every name and address of two slots differs, but the Node names", () => {
    const seen = new Map<string, number>();
    for (let slot = 0; slot < NETWORK_SLOTS; slot++) {
      const network = devNetwork(slot);
      const values = [network.bridge, ...network.bridgeAddresses, network.pinBase];
      for (const index of [1, 2, MAX_NODES]) {
        const spec = devNodeSpec(network, index);
        values.push(...spec.podCIDRs, ...spec.internalIPs, spec.netns, spec.uplink, spec.pinRoot, sandboxNetns(network, spec, "0123456789"));
      }
      for (const value of values) {
        assert.equal(seen.get(value), undefined, `${value} of slot ${slot} also belongs to slot ${seen.get(value)}`);
        seen.set(value, slot);
      }
    }
  });

  test("uplinks fit the kernel's 15 characters in every slot", () => {
    assert.ok(devNodeSpec(devNetwork(NETWORK_SLOTS - 1), MAX_NODES).uplink.length <= 15);
  });

  test("a slot recognizes its own namespaces and uplinks only", () => {
    const [zero, one] = [devNetwork(0), devNetwork(1)];
    const node = devNodeSpec(one, 2);
    assert.ok(isSlotNetns(one, node.netns));
    assert.ok(isSlotNetns(one, sandboxNetns(one, node, "0a1b2c3d-4e5f")));
    assert.ok(!isSlotNetns(zero, node.netns));
    assert.ok(!isSlotNetns(zero, sandboxNetns(one, node, "0a1b2c3d-4e5f")));
    assert.ok(isSlotNetns(zero, sandboxNetns(zero, node, "0a1b2c3d-4e5f")));
    assert.ok(!isSlotNetns(one, "pal1-2-0a1b2c3d-extra"));
    assert.equal(nodeNetnsIndex(one, node.netns), 2);
    assert.equal(nodeNetnsIndex(zero, node.netns), undefined);
    assert.ok(isSlotUplink(one, node.uplink));
    assert.ok(!isSlotUplink(zero, node.uplink));
    assert.ok(isSlotUplink(zero, devNodeSpec(zero, 2).uplink));
  });

  test("Node names map back to their index", () => {
    assert.equal(devNodeIndex("palisade-node-12"), 12);
    assert.equal(devNodeIndex("palisade-node-0"), undefined);
    assert.equal(devNodeIndex("worker-1"), undefined);
    assert.equal(devNodeIndex("palisade-node-1x"), undefined);
  });

  test("refuses slots and indexes out of range", () => {
    assert.throws(() => devNetwork(NETWORK_SLOTS), /slot 8: the slot must be 0 to 7/);
    assert.throws(() => devNodeSpec(devNetwork(0), 0), /dev node 0: the index must be 1 to 253/);
    assert.throws(() => devNodeSpec(devNetwork(0), 254), /dev node 254/);
    assert.throws(() => devNodeSpec(devNetwork(0), 1.5), /dev node 1.5/);
  });
});
