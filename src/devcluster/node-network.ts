/**
 * The dev cluster's network, as a multi-VM lab would wire it: a host bridge
 * (`palisade<slot>`, see dev-network.ts) is the cluster network; every dev
 * node is a network namespace plugged into the bridge by a veth pair
 * (`eth0` inside, its uplink on the host), holding the Node's InternalIPs,
 * routing its own pods and forwarding to the other nodes' pod CIDRs through
 * their InternalIPs. Each dev folder's cluster claims a slot of its own by
 * creating the slot's bridge with the folder recorded as its alias, so
 * clusters never share a name or an address.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DevClusterError } from "./errors.ts";
import { NETWORK_SLOTS, devNetwork, devNodeSpec, isSlotNetns, isSlotUplink, nodeNetnsIndex, type DevNetwork, type DevNodeSpec } from "./dev-network.ts";

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
 * const [one, two] = [1, 2].map((i) => devNodeSpec(devNetwork(0), i));
 * nodeRoutes(one, [one, two]);
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
 * The dev folder whose cluster owns `network` (its bridge's alias), or
 * undefined when the slot is free; "" for a bridge naming no folder.
 *
 * @example
 * ```ts
 * networkOwner(devNetwork(0)); // "/var/lib/palisade/dev"
 * ```
 */
export function networkOwner(network: DevNetwork): string | undefined {
  if (!linkExists(network.bridge)) return undefined;
  const [link] = JSON.parse(ip(["-j", "link", "show", "dev", network.bridge])) as { ifalias?: string }[];
  const alias = link?.ifalias ?? "";
  return alias.startsWith(OWNER_PREFIX) ? alias.slice(OWNER_PREFIX.length) : alias;
}

/**
 * Every slot in use on this machine, with the folder that owns it.
 *
 * @example
 * ```ts
 * usedNetworks(); // [{ network: devNetwork(0), owner: "/var/lib/palisade/dev" }]
 * ```
 */
export function usedNetworks(): { network: DevNetwork; owner: string }[] {
  return Array.from({ length: NETWORK_SLOTS }, (_, slot) => devNetwork(slot)).flatMap((network) => {
    const owner = networkOwner(network);
    return owner === undefined ? [] : [{ network, owner }];
  });
}

/** Creates `network`'s bridge owned by `dir`; false when another `dev up` created it first. */
function createOwnedBridge(network: DevNetwork, dir: string): boolean {
  const alias = `${OWNER_PREFIX}${dir}`;
  if (alias.length > MAX_ALIAS) throw new DevClusterError(`Cannot own a dev cluster network from "${dir}": the folder name is longer than ${MAX_ALIAS - OWNER_PREFIX.length} characters`);
  // Made under a name of its own and owned before it is renamed: a bridge never exists without its
  // owner, and of two concurrent `dev up`s only one rename succeeds.
  const draft = `pl-br-${process.pid % 100_000}`;
  if (linkExists(draft)) ip(["link", "del", draft]);
  ip(["link", "add", draft, "type", "bridge"]);
  ip(["link", "set", draft, "alias", alias]);
  try {
    execFileSync("ip", ["link", "set", draft, "name", network.bridge], { stdio: ["ignore", "ignore", "pipe"] });
    return true;
  } catch (cause) {
    ip(["link", "del", draft]);
    if (linkExists(network.bridge)) return false;
    throw new DevClusterError(`Cannot create bridge "${network.bridge}": ${(cause as Error).message}`, { cause });
  }
}

/**
 * The network of the cluster in `dir`: the first of `slots` it already owns,
 * else the first free one, claimed by creating its bridge with `dir` as the
 * owner. Throws, naming the owners, when every one of `slots` belongs to
 * another folder.
 *
 * @example
 * ```ts
 * (await claimClusterNetwork("/tmp/pl-test/dev", [1, 2, 3, 4, 5, 6, 7])).bridge; // "palisade1"
 * ```
 */
export async function claimClusterNetwork(dir: string, slots: readonly number[]): Promise<DevNetwork> {
  const networks = slots.map(devNetwork);
  const owned = networks.find((network) => networkOwner(network) === dir);
  if (owned) return owned;
  for (const network of networks) {
    if (networkOwner(network) !== undefined) continue;
    // Nothing owns the slot, so whatever of it is left (from a cluster whose `dev down` was killed) is garbage.
    await removeSlotLeftovers(network);
    if (createOwnedBridge(network, dir)) return network;
  }
  const taken = networks.map((network) => {
    const owner = networkOwner(network);
    return owner === "" ? `bridge "${network.bridge}" names no dev folder as its owner (remove it if nothing uses it: ip link del ${network.bridge})` : `bridge "${network.bridge}" belongs to the dev cluster in "${owner}"`;
  });
  const advice = networks.length === 1 && networkOwner(networks[0] as DevNetwork) ? `; take that one down first (PALISADE_DEV_DIR=${networkOwner(networks[0] as DevNetwork)} palisade dev down)` : "";
  throw new DevClusterError(`Cannot bring up a dev cluster with nodes in "${dir}": ${taken.join("; ")}${advice}`);
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
 * Brings up the bridge of `network`, which the cluster in `dir` claimed
 * (see {@link claimClusterNetwork}), with the host's addresses on the
 * cluster network.
 *
 * @example
 * ```ts
 * await ensureClusterBridge(devNetwork(0), "/var/lib/palisade/dev");
 * ```
 */
export async function ensureClusterBridge(network: DevNetwork, dir: string): Promise<void> {
  const owner = networkOwner(network);
  if (owner !== dir) throw new DevClusterError(`Cannot bring up bridge "${network.bridge}" for "${dir}": ${owner === undefined ? "it does not exist" : `it belongs to "${owner}"`}`);
  // The whole cluster network is ours: no duplicate address detection, so no address is ever tentative.
  hostIpv6Setting(network.bridge, "accept_dad", 0);
  ip(["link", "set", network.bridge, "up"]);
  addAddresses(network.bridge, network.bridgeAddresses);
  await settle(network.bridge);
}

/**
 * Makes each of `nodes` a namespace on the cluster network (created when
 * missing, left as is when right) and sets every route through a gateway,
 * in the node namespaces and the host, to exactly what `nodes` needs: a
 * node added later gets routes everywhere, a node gone leaves none.
 *
 * @example
 * ```ts
 * const network = devNetwork(0);
 * await ensureNodeNetworks(network, [devNodeSpec(network, 1), devNodeSpec(network, 2)]);
 * ```
 */
export async function ensureNodeNetworks(network: DevNetwork, nodes: readonly DevNodeSpec[]): Promise<void> {
  for (const node of nodes) await ensureNodeNamespace(network, node);
  for (const node of nodes) {
    const { netns } = node;
    syncGatewayRoutes(NODE_UPLINK, nodeRoutes(node, nodes), netns);
    // The node's own pod CIDRs: a pod's /32 route (from CNI) wins; an address without a pod is
    // unreachable here instead of bouncing between the node and its default route.
    for (const cidr of node.podCIDRs) ip(["-n", netns, "route", "replace", "unreachable", cidr]);
    network.bridgeAddresses.forEach((gateway) => ip(["-n", netns, "route", "replace", "default", "via", gateway, "dev", NODE_UPLINK]));
  }
  syncGatewayRoutes(network.bridge, hostRoutes(nodes));
}

async function ensureNodeNamespace(network: DevNetwork, node: DevNodeSpec): Promise<void> {
  const { netns, uplink } = node;
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
  ip(["link", "set", uplink, "master", network.bridge, "up"]);
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
 * Removes node `node`'s namespace and uplink, first killing whatever still
 * runs inside (its agent and runtime should have been stopped already).
 * Routes to it go with the next {@link ensureNodeNetworks}. Nothing happens
 * for what is already gone.
 *
 * @example
 * ```ts
 * await removeNodeNamespace(devNodeSpec(devNetwork(0), 3));
 * ```
 */
export async function removeNodeNamespace(node: DevNodeSpec): Promise<void> {
  // Deleting the host end removes the pair now; the namespace itself is freed once nothing uses it.
  if (linkExists(node.uplink)) ip(["link", "del", node.uplink]);
  await removeNetns(node.netns);
}

/** Kills every process in named namespace `name`, then deletes the name (the namespace goes with its last user). */
async function removeNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  await killProcessesIn(name);
  ip(["netns", "del", name]);
}

/**
 * The ids of the processes whose network namespace is the named namespace
 * `name` (same nsfs inode), this process excluded.
 *
 * @example
 * ```ts
 * processesInNetns("pal-1-0a1b2c3d"); // [4242]
 * ```
 */
export function processesInNetns(name: string): number[] {
  let inode: number;
  try {
    inode = statSync(join(NETNS_DIR, name)).ino;
  } catch {
    return [];
  }
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return statSync(`/proc/${pid}/ns/net`).ino === inode;
      } catch {
        // Gone meanwhile, or a kernel thread.
        return false;
      }
    })
    .map(Number);
}

async function killProcessesIn(name: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const pids = processesInNetns(name);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
    await sleep(20);
  }
  throw new DevClusterError(`Cannot remove network namespace "${name}": processes ${processesInNetns(name).join(", ")} still run inside 2 s after SIGKILL`);
}

/**
 * The indexes of the node namespaces of `network` on this machine, ascending.
 *
 * @example
 * ```ts
 * nodeNamespaceIndexes(devNetwork(0)); // [1, 2]
 * ```
 */
export function nodeNamespaceIndexes(network: DevNetwork): number[] {
  return slotNamespaces(network)
    .map((name) => nodeNetnsIndex(network, name))
    .filter((index) => index !== undefined)
    .sort((a, b) => a - b);
}

/** The named network namespaces of `network`: its nodes' and its pods'. */
function slotNamespaces(network: DevNetwork): string[] {
  return existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR).filter((name) => isSlotNetns(network, name)) : [];
}

/**
 * Removes everything of `network` from the machine: every process still
 * inside one of its node or pod namespaces (the pods' servers, a crashed
 * run's agents), the namespaces, the uplinks, the bridge (the host's
 * routes go with it) and the pins of its agents. For `dev down` after the
 * processes were stopped properly, and for a cluster whose folder is gone.
 *
 * @example
 * ```ts
 * await removeClusterNetwork(devNetwork(1));
 * ```
 */
export async function removeClusterNetwork(network: DevNetwork): Promise<void> {
  await removeSlotLeftovers(network);
  // Last: the bridge is the slot's claim, so the slot is free only once nothing of it is left.
  if (linkExists(network.bridge)) ip(["link", "del", network.bridge]);
}

/** Everything of `network` but its bridge: processes in its namespaces, the namespaces, uplinks and pins. */
async function removeSlotLeftovers(network: DevNetwork): Promise<void> {
  const namespaces = slotNamespaces(network);
  // Pods first: their servers hold the pod namespaces, and the pods' veths end in the node namespaces.
  for (const name of namespaces.filter((netns) => nodeNetnsIndex(network, netns) === undefined)) await removeNetns(name);
  for (const index of nodeNamespaceIndexes(network)) await removeNodeNamespace(devNodeSpec(network, index));
  // Uplinks whose namespace end is gone already (a pair half-built by a killed run).
  const links = JSON.parse(ip(["-j", "link", "show"])) as { ifname: string }[];
  for (const { ifname } of links) if (isSlotUplink(network, ifname)) ip(["link", "del", ifname]);
  rmSync(network.pinBase, { recursive: true, force: true });
}
