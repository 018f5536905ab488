/**
 * A node as network namespaces, for the suites and benchmarks that need
 * the node's own namespace (the proxy routing changes its rules and
 * sysctls): one namespace stands for the node (the agent's, the proxy's
 * and the host side of every pod's veth), pods are namespaces wired into
 * it as the CNI ptp plugin does, and a peer on another node is a namespace
 * behind an uplink with an on-link subnet. Each object is journaled before
 * it is made (kernel-journal.ts); deleting the node's and the peers'
 * namespaces removes everything.
 *
 * @module
 */
import { recordKernelObject } from "./kernel-journal.ts";
import { run } from "./kernel.ts";

/** A namespace with one veth into the node: its addresses and the node-side interface. */
export interface NodePeer {
  netns: string;
  hostIf: string;
  v4: string;
  v6: string;
}

/** A pod's gateway on the node side, as the CNI ptp plugin sets it. */
export const POD_GATEWAY = { v4: "169.254.1.1", v6: "fe80::1" } as const;

/**
 * Creates the node's namespace: loopback up, forwarding on, no duplicate
 * address detection (addresses are usable at once).
 *
 * @example
 * ```ts
 * createNodeNamespace("pl1a2b3c-node");
 * addPeer("pl1a2b3c-node", pod, POD_GATEWAY, undefined);
 * ```
 */
export function createNodeNamespace(node: string): void {
  recordKernelObject("netns", node);
  run("ip", ["netns", "add", node]);
  run("ip", ["-n", node, "link", "set", "lo", "up"]);
  run("ip", [
    "netns", "exec", node, "sysctl", "-qw",
    "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
  ]);
}

/**
 * Wires `peer`'s namespace (created here) to the node with a veth. Without
 * `nodeSide`, a pod: /32 and /128 routes on the node side, `gateway` on the
 * host interface, a default route via it inside. With `nodeSide`, a peer
 * behind an uplink: both ends share a /24 and /64, `nodeSide` the node's end.
 */
export function addPeer(node: string, peer: NodePeer, gateway: { v4: string; v6: string }, nodeSide: { v4: string; v6: string } | undefined): void {
  recordKernelObject("netns", peer.netns);
  run("ip", ["netns", "add", peer.netns]);
  run("ip", ["-n", node, "link", "add", peer.hostIf, "type", "veth", "peer", "name", "eth0", "netns", peer.netns]);
  const inPeer = (...args: string[]) => run("ip", ["-n", peer.netns, ...args]);
  run("ip", ["netns", "exec", peer.netns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
  inPeer("link", "set", "lo", "up");
  inPeer("addr", "add", `${peer.v4}/${nodeSide ? 24 : 32}`, "dev", "eth0");
  inPeer("-6", "addr", "add", `${peer.v6}/${nodeSide ? 64 : 128}`, "dev", "eth0", "nodad");
  inPeer("link", "set", "eth0", "up");
  const onNode = (...args: string[]) => run("ip", ["-n", node, ...args]);
  if (nodeSide) {
    onNode("addr", "add", `${nodeSide.v4}/24`, "dev", peer.hostIf);
    onNode("-6", "addr", "add", `${nodeSide.v6}/64`, "dev", peer.hostIf, "nodad");
  } else {
    onNode("addr", "add", `${gateway.v4}/32`, "dev", peer.hostIf);
    onNode("-6", "addr", "add", `${gateway.v6}/64`, "dev", peer.hostIf, "nodad");
  }
  onNode("link", "set", peer.hostIf, "up");
  if (!nodeSide) {
    onNode("route", "add", `${peer.v4}/32`, "dev", peer.hostIf);
    onNode("-6", "route", "add", `${peer.v6}/128`, "dev", peer.hostIf);
    inPeer("route", "add", gateway.v4, "dev", "eth0", "scope", "link");
  }
  inPeer("route", "add", "default", "via", gateway.v4, "dev", "eth0");
  inPeer("-6", "route", "add", "default", "via", gateway.v6, "dev", "eth0");
}
