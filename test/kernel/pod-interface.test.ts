// The agent's lookup of a pod's host-side interface (rtnetlink, no `ip`
// fork) in a node's namespace wired as the CNI ptp plugin does, against what
// `ip route get` and `ip link` say of the same addresses. Run as root; the
// namespaces are removed afterwards.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { run, tag } from "../lib/kernel.ts";
import { addPeer, createNodeNamespace, POD_GATEWAY, type NodePeer } from "../lib/node-namespace.ts";

const t = tag();
const NODE = `pl${t}-ifnode`;
const POD: NodePeer = { netns: `pl${t}-ifpod`, hostIf: `pl${t}if`, v4: "10.77.0.5", v6: "fd77::5" };
const BRIDGE = `pl${t}br`;

const inNode = (...args: string[]) => execFileSync("nsenter", [`--net=/var/run/netns/${NODE}`, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

/** podInterfaceByRoute of each address, asked from inside the node's namespace. */
function lookUp(addresses: string[]): Record<string, unknown> {
  const lookup = new URL("../../src/agent/pod-interface.js", import.meta.url).href;
  const script = `import { podInterfaceByRoute } from ${JSON.stringify(lookup)};
    const found = {};
    for (const address of process.argv.slice(1)) found[address] = (await podInterfaceByRoute(address)) ?? null;
    console.log(JSON.stringify(found));`;
  return JSON.parse(inNode(process.execPath, "--input-type=module", "-e", script, ...addresses)) as Record<string, unknown>;
}

describe("podInterfaceByRoute in a node's namespace", () => {
  before(() => {
    createNodeNamespace(NODE);
    addPeer(NODE, POD, POD_GATEWAY, undefined);
    // Addresses behind a gateway (the pod), and a bridged subnet whose members cannot be told apart by the route.
    run("ip", ["-n", NODE, "route", "add", "10.78.0.0/16", "via", POD.v4, "dev", POD.hostIf]);
    run("ip", ["-n", NODE, "link", "add", BRIDGE, "type", "bridge"]);
    run("ip", ["-n", NODE, "addr", "add", "10.79.0.1/24", "dev", BRIDGE]);
    run("ip", ["-n", NODE, "link", "set", BRIDGE, "up"]);
  });

  after(() => {
    for (const netns of [POD.netns, NODE]) {
      try {
        run("ip", ["netns", "del", netns]);
      } catch {
        // Never made.
      }
    }
  });

  it("finds a ptp pod's veth by its IPv4 and IPv6 address, as ip route get and ip link name it", () => {
    const links = JSON.parse(inNode("ip", "-j", "link", "show", "dev", POD.hostIf)) as { ifindex: number }[];
    const expected = { name: POD.hostIf, ifindex: links[0]?.ifindex };
    for (const address of [POD.v4, POD.v6]) {
      const [route] = JSON.parse(inNode("ip", "-j", "route", "get", address)) as { dev: string }[];
      assert.equal(route?.dev, POD.hostIf, `ip route get ${address}`);
    }
    assert.deepEqual(lookUp([POD.v4, POD.v6]), { [POD.v4]: expected, [POD.v6]: expected });
  });

  it("finds none through a gateway, at a local address, through a bridge, without a route, or for no address", () => {
    const [viaGateway] = JSON.parse(inNode("ip", "-j", "route", "get", "10.78.1.1")) as { gateway?: string }[];
    assert.equal(viaGateway?.gateway, POD.v4, "ip route get goes through the gateway");
    const [local] = JSON.parse(inNode("ip", "-j", "route", "get", POD_GATEWAY.v4)) as { type?: string }[];
    assert.equal(local?.type, "local", "ip route get finds the node's own address");
    const [bridged] = JSON.parse(inNode("ip", "-j", "route", "get", "10.79.0.7")) as { dev?: string; gateway?: string }[];
    assert.deepEqual([bridged?.dev, bridged?.gateway], [BRIDGE, undefined], "ip route get reaches the bridged address directly, through the bridge");
    assert.throws(() => inNode("ip", "route", "get", "192.0.2.9"), "ip route get has no route to an address off every subnet");
    assert.deepEqual(lookUp(["10.78.1.1", POD_GATEWAY.v4, "10.79.0.7", "192.0.2.9", "2001:db8::9", "not-an-address"]), {
      "10.78.1.1": null,
      [POD_GATEWAY.v4]: null,
      "10.79.0.7": null,
      "192.0.2.9": null,
      "2001:db8::9": null,
      "not-an-address": null,
    });
  });
});
