/**
 * The dev cluster's network, as a multi-VM lab would wire it: a host bridge
 * `palisade0` is the cluster network; every dev node is a network namespace
 * named like its Node, plugged into the bridge by a veth pair (`eth0`
 * inside, `pl-node<i>` on the host), holding the Node's InternalIPs, routing
 * its own pods and forwarding to the other nodes' pod CIDRs through their
 * InternalIPs. Pod CIDRs and the bridge are machine-wide, so one dev cluster
 * with nodes owns the network at a time: its folder is recorded as the
 * bridge's alias.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DevClusterError } from "./errors.ts";
import { devNodeSpec, NODE_NAME_PREFIX, type DevNodeSpec } from "./nodes.ts";

/** The host bridge that is the cluster network. */
export const CLUSTER_BRIDGE = "palisade0";

/** The bridge's own addresses: the host on the cluster network, IPv4 then IPv6 (also where the API server listens). */
export const BRIDGE_ADDRESSES = ["10.240.0.254", "fd00:10:240::fe"] as const;

/** Prefix lengths of the cluster network, IPv4 then IPv6 (the Nodes' InternalIPs share it). */
const PREFIX_LENGTHS = [24, 64] as const;

/** The interface of a node namespace that plugs into the bridge. */
export const NODE_UPLINK = "eth0";

/** Where `ip netns` keeps named namespaces. */
const NETNS_DIR = "/var/run/netns";

/** What the bridge's alias says: this prefix, then the owning dev folder. */
const OWNER_PREFIX = "palisade-dev ";

/** The longest alias the kernel keeps (IFALIASZ - 1). */
const MAX_ALIAS = 255;

/**
 * The network namespace of dev node `spec` (the Node's name).
 *
 * @example
 * ```ts
 * nodeNetns(devNodeSpec(2)); // "palisade-node-2"
 * ```
 */
export function nodeNetns(spec: DevNodeSpec): string {
  return spec.name;
}

/**
 * The host side of node `index`'s uplink: `pl-node<i>`, within the kernel's 15 characters.
 *
 * @example
 * ```ts
 * uplinkName(3); // "pl-node3"
 * ```
 */
export function uplinkName(index: number): string {
  return `pl-node${index}`;
}

/** The 1-based index of a dev node from its name. */
function nodeIndex(spec: DevNodeSpec): number {
  return Number(spec.name.slice(NODE_NAME_PREFIX.length));
}

/** One route through a gateway: `dst` via `via`. */
export interface GatewayRoute {
  dst: string;
  via: string;
}

/**
 * The routes through gateways a node namespace needs: every other node's
 * pod CIDRs via its InternalIPs, straight over the bridge.
 *
 * @example
 * ```ts
 * nodeRoutes(devNodeSpec(1), [devNodeSpec(1), devNodeSpec(2)]);
 * // [{ dst: "10.244.2.0/24", via: "10.240.0.2" }, { dst: "fd00:10:244:2::/64", via: "fd00:10:240::2" }]
 * ```
 */
export function nodeRoutes(node: DevNodeSpec, nodes: readonly DevNodeSpec[]): GatewayRoute[] {
  return nodes.filter((other) => other.name !== node.name).flatMap(podCidrRoutes);
}

/**
 * The routes of the host namespace: every node's pod CIDRs via its
 * InternalIPs, so host tools reach every pod.
 */
export function hostRoutes(nodes: readonly DevNodeSpec[]): GatewayRoute[] {
  return nodes.flatMap(podCidrRoutes);
}

function podCidrRoutes(spec: DevNodeSpec): GatewayRoute[] {
  return spec.podCIDRs.map((dst, family) => ({ dst, via: spec.internalIPs[family] as string }));
}

function ip(args: string[]): string {
  try {
    return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr?.trim() ?? "";
    throw new DevClusterError(`Cannot wire the dev cluster network: "ip ${args.join(" ")}" failed: ${stderr}`, { cause });
  }
}

function sysctl(netns: string, settings: string[]): void {
  try {
    execFileSync("ip", ["netns", "exec", netns, "sysctl", "-qw", ...settings], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (cause) {
    const stderr = (cause as { stderr?: Buffer }).stderr?.toString().trim() ?? "";
    throw new DevClusterError(`Cannot set ${settings.join(" ")} in network namespace "${netns}": ${stderr}`, { cause });
  }
}

function linkExists(name: string, netns?: string): boolean {
  try {
    execFileSync("ip", [...(netns ? ["-n", netns] : []), "link", "show", "dev", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function netnsExists(name: string): boolean {
  return existsSync(join(NETNS_DIR, name));
}

/**
 * The dev folder whose cluster owns the bridge, or undefined when there is no bridge.
 *
 * @example
 * ```ts
 * clusterNetworkOwner(); // "/var/lib/palisade/dev"
 * ```
 */
export function clusterNetworkOwner(): string | undefined {
  if (!linkExists(CLUSTER_BRIDGE)) return undefined;
  const [link] = JSON.parse(ip(["-j", "link", "show", "dev", CLUSTER_BRIDGE])) as { ifalias?: string }[];
  const alias = link?.ifalias ?? "";
  return alias.startsWith(OWNER_PREFIX) ? alias.slice(OWNER_PREFIX.length) : alias;
}

/**
 * Throws unless the cluster network is free or already belongs to the
 * cluster in `dir`: one dev cluster with nodes per machine.
 *
 * @example
 * ```ts
 * assertClusterNetworkOwner("/tmp/dev"); // throws if /var/lib/palisade/dev's cluster runs
 * ```
 */
export function assertClusterNetworkOwner(dir: string): void {
  const owner = clusterNetworkOwner();
  if (owner === undefined || owner === dir) return;
  const what = `Cannot bring up a dev cluster with nodes in "${dir}"`;
  if (owner === "") {
    throw new DevClusterError(`${what}: bridge "${CLUSTER_BRIDGE}" exists but names no dev folder as its owner (ip link show ${CLUSTER_BRIDGE}); remove it first if nothing uses it (ip link del ${CLUSTER_BRIDGE})`);
  }
  throw new DevClusterError(
    `${what}: bridge "${CLUSTER_BRIDGE}" belongs to the dev cluster in "${owner}", and only one dev cluster with nodes runs per machine; ` +
      `take that one down first (PALISADE_DEV_DIR=${owner} palisade dev down)`,
  );
}

/** Waits (up to 10 s) until no IPv6 address of `device` (in `netns`, else the host's) is tentative. */
async function settle(device: string, netns?: string): Promise<void> {
  const args = [...(netns ? ["-n", netns] : []), "-6", "-o", "addr", "show", "dev", device, "tentative"];
  for (let i = 0; i < 200; i++) {
    if (ip(args).trim() === "") return;
    await sleep(50);
  }
  throw new DevClusterError(`Cannot wire the dev cluster network: IPv6 addresses of "${device}"${netns ? ` in network namespace "${netns}"` : ""} stayed tentative for 10 s`);
}

/** Sets IPv6 sysctl `key` of host interface `device` (duplicate address detection, IPv6 on bridge ports). */
function hostIpv6Setting(device: string, key: string, value: number): void {
  writeFileSync(`/proc/sys/net/ipv6/conf/${device}/${key}`, `${value}\n`);
}

function addAddresses(device: string, addresses: readonly string[], netns?: string): void {
  const prefix = netns ? ["-n", netns] : [];
  addresses.forEach((address, family) => {
    // `replace` keeps the call idempotent; no duplicate address detection on a network we own entirely.
    ip([...prefix, "addr", "replace", `${address}/${PREFIX_LENGTHS[family]}`, "dev", device, ...(family === 1 ? ["nodad"] : [])]);
  });
}

/**
 * Creates the bridge (or finds it) for the cluster in `dir`, with the host's
 * addresses on the cluster network, and records `dir` as its owner.
 *
 * @example
 * ```ts
 * await ensureClusterBridge("/var/lib/palisade/dev");
 * ```
 */
export async function ensureClusterBridge(dir: string): Promise<void> {
  const alias = `${OWNER_PREFIX}${dir}`;
  if (alias.length > MAX_ALIAS) throw new DevClusterError(`Cannot own the dev cluster network from "${dir}": the folder name is longer than ${MAX_ALIAS - OWNER_PREFIX.length} characters`);
  assertClusterNetworkOwner(dir);
  if (!linkExists(CLUSTER_BRIDGE)) {
    // Made under a name of its own and owned before it is renamed: the bridge never exists without
    // its owner, and of two concurrent `dev up`s only one rename succeeds.
    const draft = `pl-br-${process.pid % 100_000}`;
    if (linkExists(draft)) ip(["link", "del", draft]);
    ip(["link", "add", draft, "type", "bridge"]);
    ip(["link", "set", draft, "alias", alias]);
    try {
      execFileSync("ip", ["link", "set", draft, "name", CLUSTER_BRIDGE], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (cause) {
      ip(["link", "del", draft]);
      // Another dev up won the name a moment ago: whose it is decides.
      assertClusterNetworkOwner(dir);
      if (!linkExists(CLUSTER_BRIDGE)) throw new DevClusterError(`Cannot create bridge "${CLUSTER_BRIDGE}": ${(cause as Error).message}`, { cause });
    }
  }
  // The whole cluster network is ours: no duplicate address detection, so no address is ever tentative.
  hostIpv6Setting(CLUSTER_BRIDGE, "accept_dad", 0);
  ip(["link", "set", CLUSTER_BRIDGE, "up"]);
  addAddresses(CLUSTER_BRIDGE, BRIDGE_ADDRESSES);
  await settle(CLUSTER_BRIDGE);
}

/**
 * Makes each of `nodes` a namespace on the cluster network (created when
 * missing, left as is when right) and sets every route through a gateway,
 * in the node namespaces and the host, to exactly what `nodes` needs: a
 * node added later gets routes everywhere, a node gone leaves none.
 *
 * @example
 * ```ts
 * await ensureNodeNetworks([devNodeSpec(1), devNodeSpec(2)]);
 * ```
 */
export async function ensureNodeNetworks(nodes: readonly DevNodeSpec[]): Promise<void> {
  for (const node of nodes) await ensureNodeNamespace(node);
  for (const node of nodes) {
    const netns = nodeNetns(node);
    syncGatewayRoutes(NODE_UPLINK, nodeRoutes(node, nodes), netns);
    // The node's own pod CIDRs: a pod's /32 route (from CNI) wins; an address without a pod is
    // unreachable here instead of bouncing between the node and its default route.
    for (const cidr of node.podCIDRs) ip(["-n", netns, "route", "replace", "unreachable", cidr]);
    BRIDGE_ADDRESSES.forEach((gateway) => ip(["-n", netns, "route", "replace", "default", "via", gateway, "dev", NODE_UPLINK]));
  }
  syncGatewayRoutes(CLUSTER_BRIDGE, hostRoutes(nodes));
}

async function ensureNodeNamespace(node: DevNodeSpec): Promise<void> {
  const netns = nodeNetns(node);
  const uplink = uplinkName(nodeIndex(node));
  if (!netnsExists(netns)) ip(["netns", "add", netns]);
  // A router, like any node: it forwards between its pods and the cluster network, over both families.
  // New interfaces (the uplink, pods' veths) skip duplicate address detection: every address is ours.
  sysctl(netns, ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
  ip(["-n", netns, "link", "set", "lo", "up"]);
  if (!linkExists(NODE_UPLINK, netns) || !linkExists(uplink)) {
    // A half-built pair (one end left) is replaced whole.
    if (linkExists(uplink)) ip(["link", "del", uplink]);
    if (linkExists(NODE_UPLINK, netns)) ip(["-n", netns, "link", "del", NODE_UPLINK]);
    ip(["link", "add", uplink, "type", "veth", "peer", "name", NODE_UPLINK, "netns", netns]);
  }
  sysctl(netns, [`net.ipv6.conf.${NODE_UPLINK}.accept_dad=0`]);
  // A bridge port carries frames, not addresses.
  hostIpv6Setting(uplink, "disable_ipv6", 1);
  ip(["link", "set", uplink, "master", CLUSTER_BRIDGE, "up"]);
  addAddresses(NODE_UPLINK, node.internalIPs, netns);
  ip(["-n", netns, "link", "set", NODE_UPLINK, "up"]);
  await settle(NODE_UPLINK, netns);
}

interface RouteEntry {
  dst?: string;
  gateway?: string;
  type?: string;
}

/** Sets the routes through a gateway on `device` to exactly `wanted` (defaults and directly connected routes untouched). */
function syncGatewayRoutes(device: string, wanted: readonly GatewayRoute[], netns?: string): void {
  const prefix = netns ? ["-n", netns] : [];
  const key = (route: GatewayRoute): string => `${route.dst} ${route.via}`;
  const want = new Set(wanted.map(key));
  for (const family of ["-4", "-6"]) {
    const routes = JSON.parse(ip([...prefix, "-j", family, "route", "show", "dev", device])) as RouteEntry[];
    for (const route of routes) {
      if (route.dst === undefined || route.dst === "default" || route.gateway === undefined) continue;
      if (!want.has(key({ dst: route.dst, via: route.gateway }))) ip([...prefix, family, "route", "del", route.dst, "via", route.gateway, "dev", device]);
    }
  }
  for (const route of wanted) ip([...prefix, "route", "replace", route.dst, "via", route.via, "dev", device]);
}

/**
 * Removes node `index`'s namespace and uplink (its processes must be
 * stopped first). Routes to it go with the next {@link ensureNodeNetworks}.
 * Nothing happens for what is already gone.
 *
 * @example
 * ```ts
 * removeNodeNamespace(3);
 * ```
 */
export function removeNodeNamespace(index: number): void {
  const spec = devNodeSpec(index);
  // Deleting the host end removes the pair now; the namespace itself is freed once nothing uses it.
  if (linkExists(uplinkName(index))) ip(["link", "del", uplinkName(index)]);
  if (netnsExists(nodeNetns(spec))) ip(["netns", "del", nodeNetns(spec)]);
}

/**
 * The indexes of the dev node namespaces on this machine, ascending.
 *
 * @example
 * ```ts
 * nodeNamespaceIndexes(); // [1, 2]
 * ```
 */
export function nodeNamespaceIndexes(): number[] {
  if (!existsSync(NETNS_DIR)) return [];
  return readdirSync(NETNS_DIR)
    .filter((name) => new RegExp(`^${NODE_NAME_PREFIX}\\d+$`).test(name))
    .map((name) => Number(name.slice(NODE_NAME_PREFIX.length)))
    .sort((a, b) => a - b);
}

/**
 * Removes the whole cluster network if the cluster in `dir` owns it: every
 * node namespace and uplink, then the bridge (its host routes go with it).
 * Returns whether it removed anything; a network of another folder is left alone.
 *
 * @example
 * ```ts
 * removeClusterNetwork("/var/lib/palisade/dev");
 * ```
 */
export function removeClusterNetwork(dir: string): boolean {
  if (clusterNetworkOwner() !== dir) return false;
  for (const index of nodeNamespaceIndexes()) removeNodeNamespace(index);
  ip(["link", "del", CLUSTER_BRIDGE]);
  return true;
}
