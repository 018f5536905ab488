import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { apiserverUrl } from "./credentials.ts";
import { hostRoutes, nodeNetns, nodeRoutes, uplinkName } from "./node-network.ts";
import { MAX_NODES, devNodeSpec } from "./nodes.ts";

describe("dev cluster network plan", () => {
  const nodes = [1, 2, 3].map(devNodeSpec);

  test("each node routes the other nodes' pod CIDRs, both families, via their InternalIPs", () => {
    assert.deepEqual(nodeRoutes(devNodeSpec(2), nodes), [
      { dst: "10.244.1.0/24", via: "10.240.0.1" },
      { dst: "fd00:10:244:1::/64", via: "fd00:10:240::1" },
      { dst: "10.244.3.0/24", via: "10.240.0.3" },
      { dst: "fd00:10:244:3::/64", via: "fd00:10:240::3" },
    ]);
    assert.deepEqual(nodeRoutes(devNodeSpec(1), [devNodeSpec(1)]), [], "a single node routes nothing through a gateway");
  });

  test("the host routes every node's pod CIDRs via that node", () => {
    assert.deepEqual(hostRoutes(nodes.slice(0, 2)), [
      { dst: "10.244.1.0/24", via: "10.240.0.1" },
      { dst: "fd00:10:244:1::/64", via: "fd00:10:240::1" },
      { dst: "10.244.2.0/24", via: "10.240.0.2" },
      { dst: "fd00:10:244:2::/64", via: "fd00:10:240::2" },
    ]);
  });

  test("namespaces are named like their Node and uplinks fit the kernel's 15 characters", () => {
    assert.equal(nodeNetns(devNodeSpec(7)), "palisade-node-7");
    assert.equal(uplinkName(MAX_NODES), "pl-node254");
    assert.ok(uplinkName(MAX_NODES).length <= 15);
  });

  test("the API server URL names the recorded address, bracketing IPv6", () => {
    const ports = { apiserver: 6443, etcd: 2379, etcdPeer: 2380, controllerManager: 10257, scheduler: 10259 };
    assert.equal(apiserverUrl({ apiserverAddress: "10.240.0.254", ports }), "https://10.240.0.254:6443");
    assert.equal(apiserverUrl({ apiserverAddress: "fd00:10:240::fe", ports }), "https://[fd00:10:240::fe]:6443");
  });
});
