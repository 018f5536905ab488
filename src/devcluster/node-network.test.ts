import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { apiserverUrl } from "./credentials.ts";
import { hostRoutes, nodeRoutes } from "./node-network.ts";
import { devNetwork, devNodeSpec } from "./dev-network.ts";

describe("dev cluster network plan", () => {
  const network = devNetwork(0);
  const nodes = [1, 2, 3].map((index) => devNodeSpec(network, index));

  test("each node routes the other nodes' pod CIDRs, both families, via their InternalIPs", () => {
    assert.deepEqual(nodeRoutes(devNodeSpec(network, 2), nodes), [
      { dst: "10.244.1.0/24", via: "10.240.0.1" },
      { dst: "fd00:10:244:1::/64", via: "fd00:10:240::1" },
      { dst: "10.244.3.0/24", via: "10.240.0.3" },
      { dst: "fd00:10:244:3::/64", via: "fd00:10:240::3" },
    ]);
    assert.deepEqual(nodeRoutes(devNodeSpec(network, 1), [devNodeSpec(network, 1)]), [], "a single node routes nothing through a gateway");
  });

  test("the host routes every node's pod CIDRs via that node", () => {
    assert.deepEqual(hostRoutes(nodes.slice(0, 2)), [
      { dst: "10.244.1.0/24", via: "10.240.0.1" },
      { dst: "fd00:10:244:1::/64", via: "fd00:10:240::1" },
      { dst: "10.244.2.0/24", via: "10.240.0.2" },
      { dst: "fd00:10:244:2::/64", via: "fd00:10:240::2" },
    ]);
  });

  test("the API server URL names the recorded address, bracketing IPv6", () => {
    const ports = { apiserver: 6443, etcd: 2379, etcdPeer: 2380, controllerManager: 10257, scheduler: 10259 };
    assert.equal(apiserverUrl({ apiserverAddress: "10.240.0.254", ports }), "https://10.240.0.254:6443");
    assert.equal(apiserverUrl({ apiserverAddress: "fd00:10:240::fe", ports }), "https://[fd00:10:240::fe]:6443");
  });
});
