/**
 * The routing that delivers steered flows to the node's transparent proxy,
 * in the current network namespace (the node's: the agent's, the proxy's
 * and the host side of every pod's veth):
 *
 * - a fwmark rule (`fwmark 0x0a00/0x0f00 lookup 2047 pref 90`) and a local
 *   default route in table 2047, IPv4 and IPv6: a packet the datapath marks
 *   {@link PROXY_MARK_TO} goes to a local socket whatever its destination
 *   (TPROXY style: the proxy's listener, accepted and upstream sockets);
 * - `net.ipv4.tcp_early_demux=0` (it covers IPv6 too): early demux, which
 *   finds a socket before routing, kept steered packets from the
 *   transparent sockets;
 * - the proxy device, a veth pair: `pal_proxy`, out of which the to-pod hook
 *   (tc egress, where bpf_sk_assign is not allowed) redirects what it steers
 *   (IPv6 off: it sends nothing of its own), and its peer `pal_proxy_in`,
 *   whose ingress runs `pal_to_proxy` and takes the packets into the stack
 *   (169.254.77.1/32 so that IPv4 is up on it, loose reverse-path filter: the
 *   sources are pods and peers routed elsewhere).
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { DatapathError } from "./datapath-error.ts";
import { PROXY_MARK_MASK, PROXY_MARK_TO } from "./transparent-socket.ts";

/** The device the to-pod hook redirects steered packets out of. */
export const PROXY_DEVICE = "pal_proxy";
/** Its veth peer, where steered packets enter the stack (`pal_to_proxy` on its ingress). */
export const PROXY_RECEIVER = "pal_proxy_in";
/** The routing table of marked packets: a local default route. */
export const PROXY_ROUTE_TABLE = 2047;
/** The preference of the fwmark rule: before the main table (32766). */
export const PROXY_RULE_PREF = 90;
/** The address that puts IPv4 up on the receiving device. */
export const PROXY_RECEIVER_ADDRESS = "169.254.77.1/32";

/** What the datapath needs of the proxy device; see `Datapath.setProxy` and `Datapath.attachProxyDevice`. */
export interface ProxyDevice {
  /** `pal_proxy`: the to-pod hook redirects out of it (`ProxyConfig.ifindex`). */
  ifindex: number;
  /** `pal_proxy_in`: attach `pal_to_proxy` here. */
  receiverIfindex: number;
  /** The MAC of `pal_proxy_in` (`ProxyConfig.mac`). */
  mac: string;
}

const FAMILIES = ["-4", "-6"] as const;

function ip(args: string[]): string {
  try {
    return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr?.trim() ?? "";
    throw new DatapathError(`Cannot set up proxy routing: "ip ${args.join(" ")}" failed: ${stderr}`, { cause });
  }
}

function sysctl(key: string, value: number): void {
  try {
    // /proc/sys/net is the current network namespace's, unlike /sys under `nsenter --net`.
    writeFileSync(`/proc/sys/${key}`, `${value}\n`);
  } catch (cause) {
    throw new DatapathError(`Cannot set up proxy routing: writing ${value} to /proc/sys/${key} failed: ${(cause as Error).message}`, { cause });
  }
}

function link(name: string): { ifindex: number; address: string } | undefined {
  try {
    const [found] = JSON.parse(execFileSync("ip", ["-j", "link", "show", "dev", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })) as { ifindex: number; address: string }[];
    return found;
  } catch {
    return undefined;
  }
}

const MARK_RULE = ["fwmark", `0x${PROXY_MARK_TO.toString(16)}/0x${PROXY_MARK_MASK.toString(16)}`, "lookup", String(PROXY_ROUTE_TABLE), "pref", String(PROXY_RULE_PREF)];

/**
 * Sets up the proxy device, rules, routes and sysctls in the current
 * network namespace; idempotent (what exists is kept or corrected).
 * Returns what `Datapath.setProxy` and `Datapath.attachProxyDevice` need.
 *
 * @example
 * ```ts
 * const device = installProxyRouting();
 * datapath.attachProxyDevice(device.receiverIfindex);
 * datapath.setProxy({ ifindex: device.ifindex, port: DEFAULT_PROXY_PORT, mac: device.mac });
 * ```
 * @throws {DatapathError} naming the command that failed.
 */
export function installProxyRouting(): ProxyDevice {
  if (link(PROXY_DEVICE) === undefined) ip(["link", "add", PROXY_DEVICE, "type", "veth", "peer", "name", PROXY_RECEIVER]);
  sysctl(`net/ipv6/conf/${PROXY_DEVICE}/disable_ipv6`, 1);
  sysctl(`net/ipv6/conf/${PROXY_RECEIVER}/disable_ipv6`, 0);
  sysctl(`net/ipv4/conf/${PROXY_RECEIVER}/rp_filter`, 2);
  ip(["addr", "replace", PROXY_RECEIVER_ADDRESS, "dev", PROXY_RECEIVER]);
  ip(["link", "set", PROXY_RECEIVER, "up"]);
  ip(["link", "set", PROXY_DEVICE, "up"]);
  // The local routes lead to lo, which IPv6 wants up (a node's always is).
  ip(["link", "set", "lo", "up"]);
  for (const family of FAMILIES) {
    if (ip([family, "rule", "show", "pref", String(PROXY_RULE_PREF)]).trim() === "") ip([family, "rule", "add", ...MARK_RULE]);
    ip([family, "route", "replace", "local", "default", "dev", "lo", "table", String(PROXY_ROUTE_TABLE)]);
  }
  sysctl("net/ipv4/tcp_early_demux", 0);
  const device = link(PROXY_DEVICE);
  const receiver = link(PROXY_RECEIVER);
  if (device === undefined || receiver === undefined) throw new DatapathError(`Cannot set up proxy routing: "${PROXY_DEVICE}" or "${PROXY_RECEIVER}" vanished while it was set up`);
  return { ifindex: device.ifindex, receiverIfindex: receiver.ifindex, mac: receiver.address };
}

/**
 * Removes what {@link installProxyRouting} set up (early demux back on, its
 * default); idempotent. Flows that need the proxy then fail closed once
 * `Datapath.setProxy(undefined)` says so.
 *
 * @example
 * ```ts
 * datapath.setProxy(undefined);
 * removeProxyRouting();
 * ```
 */
export function removeProxyRouting(): void {
  for (const family of FAMILIES) {
    while (ip([family, "rule", "show", "pref", String(PROXY_RULE_PREF)]).trim() !== "") ip([family, "rule", "del", "pref", String(PROXY_RULE_PREF)]);
    ip([family, "route", "flush", "table", String(PROXY_ROUTE_TABLE)]);
  }
  if (link(PROXY_DEVICE) !== undefined) ip(["link", "del", PROXY_DEVICE]);
  sysctl("net/ipv4/tcp_early_demux", 1);
}
