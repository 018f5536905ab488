/**
 * Runs a node's CNI network the way a container runtime does (CNI 1.0.0:
 * the command and sandbox in the environment, each plugin's configuration
 * with the previous plugin's result on stdin): the chain of the first file
 * in the node's configuration folder, each plugin found by its `type` in the
 * plugin folders. The dev node's own network is Debian's real ptp plugin
 * (`containernetworking-plugins`) with host-local IPAM over the node's IPv4
 * and IPv6 pod CIDRs ({@linkcode nodeNetworkConfig}); `palisade install-cni`
 * chains Palisade's plugin after it, which attaches the agent's programs to
 * the new interface before the pod runs (src/cni/).
 *
 * @module
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { primaryConfigFile, readNetworkList, type NetworkList, type PluginConfig } from "../../cni/config.ts";
import { NodeRuntimeError } from "./errors.ts";

/** Where Debian installs the CNI plugin binaries. */
export const CNI_PATH = "/usr/lib/cni";

/** The interface name inside every pod's network namespace. */
export const POD_INTERFACE = "eth0";

/** Where a node's runtime finds its network, as a runtime's `/etc/cni/net.d` and `/opt/cni/bin`. */
export interface CniNetwork {
  /** The network configuration folder: its first file is the network. */
  confDir: string;
  /** The plugin folders, searched in order (CNI_PATH). */
  binDirs: readonly string[];
}

/** One sandbox a plugin is asked about. */
export interface CniSandbox {
  /** CNI_CONTAINERID; the pod's uid. */
  containerId: string;
  /** The name of the network namespace under /var/run/netns. */
  netns: string;
}

/** What ADD assigned to the pod. */
export interface CniResult {
  /** The pod's addresses without prefix length, IPv4 first. */
  ips: string[];
  /** The host side of the pod's veth pair. */
  hostInterface: string;
}

interface CniAddOutput {
  interfaces?: { name: string; sandbox?: string }[];
  ips?: { address: string; interface?: number }[];
}

/**
 * The ptp + host-local network of a dev node, as its configuration file holds it.
 *
 * @example
 * ```ts
 * nodeNetworkConfig({ name: "palisade-node-1", podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"], ipamDataDir: "/tmp/ipam" });
 * ```
 */
export function nodeNetworkConfig(network: { name: string; podCIDRs: readonly string[]; ipamDataDir: string }): NetworkList {
  return {
    cniVersion: "1.0.0",
    name: network.name,
    plugins: [
      {
        type: "ptp",
        // Pods talk to each other by their own addresses; NAT would hide the peer that policy is about.
        ipMasq: false,
        ipam: {
          type: "host-local",
          ranges: network.podCIDRs.map((subnet) => [{ subnet }]),
          routes: network.podCIDRs.map((cidr) => ({ dst: cidr.includes(":") ? "::/0" : "0.0.0.0/0" })),
          dataDir: network.ipamDataDir,
        },
      },
    ],
  };
}

/** The network now: a runtime reads the configuration for every call, so a plugin chained meanwhile takes part from the next pod on. */
function loadNetwork(network: CniNetwork): NetworkList {
  const file = primaryConfigFile(network.confDir);
  if (file === undefined) throw new NodeRuntimeError(`Cannot wire pods: no CNI network configuration in "${network.confDir}"`);
  return readNetworkList(file);
}

function pluginExecutable(network: CniNetwork, type: string): string {
  const found = network.binDirs.map((dir) => join(dir, type)).find((file) => existsSync(file));
  if (found === undefined) throw new NodeRuntimeError(`Cannot find CNI plugin "${type}" in ${network.binDirs.join(", ")}`);
  return found;
}

function runPlugin(command: "ADD" | "DEL", network: CniNetwork, list: NetworkList, plugin: PluginConfig, prevResult: unknown, sandbox: CniSandbox): Promise<string> {
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: sandbox.containerId,
    CNI_NETNS: join("/var/run/netns", sandbox.netns),
    CNI_IFNAME: POD_INTERFACE,
    CNI_PATH: network.binDirs.join(":"),
  };
  const config = { ...plugin, cniVersion: list.cniVersion, name: list.name, ...(prevResult !== undefined && { prevResult }) };
  return new Promise((resolve, reject) => {
    const child = execFile(pluginExecutable(network, plugin.type), [], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) {
        // A plugin reports failures as a JSON error object on stdout.
        let detail = `${stdout}${stderr}`.trim();
        try {
          const parsed = JSON.parse(stdout) as { msg?: string; details?: string };
          detail = [parsed.msg, parsed.details].filter(Boolean).join(": ");
        } catch {
          // Not JSON: keep the raw output.
        }
        reject(new NodeRuntimeError(`Cannot ${command} sandbox "${sandbox.netns}" on network "${list.name}": the ${plugin.type} plugin failed: ${detail}`, { cause: error }));
      } else {
        resolve(stdout);
      }
    });
    child.stdin?.end(JSON.stringify(config));
  });
}

/**
 * CNI ADD through the chain: a veth pair into the sandbox, an address from
 * each pod CIDR, default routes via the host, a host route to each address;
 * then the agent's programs on the host side (fails, to be retried, while
 * the node's agent has not pinned them).
 *
 * @example
 * ```ts
 * const { ips, hostInterface } = await cniAdd(network, { containerId: pod.metadata.uid, netns: "pal-1-0a1b2c3d" });
 * ```
 */
export async function cniAdd(network: CniNetwork, sandbox: CniSandbox): Promise<CniResult> {
  const list = loadNetwork(network);
  let stdout = "";
  try {
    for (const plugin of list.plugins) stdout = await runPlugin("ADD", network, list, plugin, stdout === "" ? undefined : JSON.parse(stdout), sandbox);
  } catch (error) {
    // As runtimes do when a chain fails part-way: DEL the whole chain, so the next ADD starts clean (no address left leased).
    await cniDel(network, sandbox).catch(() => undefined);
    throw error;
  }
  const result = JSON.parse(stdout) as CniAddOutput;
  const interfaces = result.interfaces ?? [];
  const host = interfaces.find((i) => i.sandbox === undefined || i.sandbox === "");
  const ips = (result.ips ?? []).map((ip) => ip.address.split("/")[0] ?? ip.address);
  if (host === undefined || ips.length === 0) {
    throw new NodeRuntimeError(`Cannot use the result of CNI ADD for sandbox "${sandbox.netns}": expected a host interface and an address, got ${stdout.trim()}`);
  }
  return { ips: [...ips.filter((ip) => !ip.includes(":")), ...ips.filter((ip) => ip.includes(":"))], hostInterface: host.name };
}

/**
 * CNI DEL: releases the sandbox's addresses and removes its veth pair and
 * host routes. Succeeds when there is nothing left to release.
 *
 * @example
 * ```ts
 * await cniDel(network, { containerId: pod.metadata.uid, netns: "pal-1-0a1b2c3d" });
 * ```
 */
export async function cniDel(network: CniNetwork, sandbox: CniSandbox): Promise<void> {
  // In reverse order, as runtimes delete a chain.
  const list = loadNetwork(network);
  for (const plugin of [...list.plugins].reverse()) await runPlugin("DEL", network, list, plugin, undefined, sandbox);
}
