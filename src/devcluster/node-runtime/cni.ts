/**
 * Calls the CNI plugins of a node's network the way a container runtime
 * does (CNI 1.0.0, the command and sandbox in the environment, the network
 * configuration on stdin): Debian's real ptp plugin
 * (`containernetworking-plugins`) with host-local IPAM over the node's IPv4
 * and IPv6 pod CIDRs, then, when the node runs an agent, Palisade's own
 * plugin chained after it, which attaches the agent's programs to the new
 * interface before the pod runs (src/cni/plugin.ts).
 *
 * @module
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NodeRuntimeError } from "./errors.ts";

/** Where Debian installs the CNI plugin binaries. */
export const CNI_PATH = "/usr/lib/cni";

/** The interface name inside every pod's network namespace. */
export const POD_INTERFACE = "eth0";

/** The network one node wires its pods into. */
export interface CniNetwork {
  /** The network's name, also host-local's state folder name. */
  name: string;
  /** The node's pod CIDRs, IPv4 then IPv6. */
  podCIDRs: readonly string[];
  /** host-local's data folder (its leases live in `<dataDir>/<name>/`). */
  dataDir: string;
  /** The node agent's bpffs pin root: when set, the palisade plugin is chained after ptp. */
  agentPinRoot?: string;
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
  /** The pod's addresses without prefix length, in the order of the pod CIDRs. */
  ips: string[];
  /** The host side of the pod's veth pair. */
  hostInterface: string;
}

interface CniAddOutput {
  interfaces?: { name: string; sandbox?: string }[];
  ips?: { address: string; interface?: number }[];
}

/**
 * The ptp + host-local configuration of `network`, as the plugin reads it on stdin.
 *
 * @example
 * ```ts
 * cniConfig({ name: "palisade-node-1", podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"], dataDir: "/tmp/ipam" });
 * ```
 */
export function cniConfig(network: CniNetwork): Record<string, unknown> {
  return {
    cniVersion: "1.0.0",
    name: network.name,
    type: "ptp",
    // Pods talk to each other by their own addresses; NAT would hide the peer that policy is about.
    ipMasq: false,
    ipam: {
      type: "host-local",
      ranges: network.podCIDRs.map((subnet) => [{ subnet }]),
      routes: network.podCIDRs.map((cidr) => ({ dst: cidr.includes(":") ? "::/0" : "0.0.0.0/0" })),
      dataDir: network.dataDir,
    },
  };
}

/** One plugin of the chain: how to run it and its configuration (without prevResult). */
interface ChainedPlugin {
  type: string;
  command: string[];
  config: Record<string, unknown>;
}

const PALISADE_PLUGIN = fileURLToPath(new URL("../../cni/plugin.js", import.meta.url));

/** The plugins of `network`, in ADD order. */
function chain(network: CniNetwork): ChainedPlugin[] {
  const plugins: ChainedPlugin[] = [{ type: "ptp", command: [join(CNI_PATH, "ptp")], config: cniConfig(network) }];
  if (network.agentPinRoot !== undefined) {
    plugins.push({
      type: "palisade",
      command: [process.execPath, PALISADE_PLUGIN],
      config: { cniVersion: "1.0.0", name: network.name, type: "palisade", pinRoot: network.agentPinRoot },
    });
  }
  return plugins;
}

function runPlugin(command: "ADD" | "DEL", plugin: ChainedPlugin, config: Record<string, unknown>, network: CniNetwork, sandbox: CniSandbox): Promise<string> {
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: sandbox.containerId,
    CNI_NETNS: join("/var/run/netns", sandbox.netns),
    CNI_IFNAME: POD_INTERFACE,
    CNI_PATH,
  };
  const [file, ...args] = plugin.command as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) {
        // A plugin reports failures as a JSON error object on stdout.
        let detail = `${stdout}${stderr}`.trim();
        try {
          const parsed = JSON.parse(stdout) as { msg?: string; details?: string };
          detail = [parsed.msg, parsed.details].filter(Boolean).join(": ");
        } catch {
          // Not JSON: keep the raw output.
        }
        reject(new NodeRuntimeError(`Cannot ${command} sandbox "${sandbox.netns}" on network "${network.name}": the ${plugin.type} plugin failed: ${detail}`, { cause: error }));
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
  let stdout = "";
  try {
    for (const plugin of chain(network)) {
      const config = stdout === "" ? plugin.config : { ...plugin.config, prevResult: JSON.parse(stdout) as unknown };
      stdout = await runPlugin("ADD", plugin, config, network, sandbox);
    }
  } catch (error) {
    // As runtimes do when a chain fails part-way: DEL the whole chain, so the next ADD starts clean (no address left leased).
    await cniDel(network, sandbox).catch(() => undefined);
    throw error;
  }
  const result = JSON.parse(stdout) as CniAddOutput;
  const interfaces = result.interfaces ?? [];
  const host = interfaces.find((i) => i.sandbox === undefined || i.sandbox === "");
  const ips = (result.ips ?? []).map((ip) => ip.address.split("/")[0] ?? ip.address);
  const ordered = network.podCIDRs.map((cidr) => ips.find((ip) => ip.includes(":") === cidr.includes(":")));
  if (host === undefined || ordered.some((ip) => ip === undefined)) {
    throw new NodeRuntimeError(`Cannot use the result of CNI ADD for sandbox "${sandbox.netns}": expected a host interface and one address per pod CIDR, got ${stdout.trim()}`);
  }
  return { ips: ordered as string[], hostInterface: host.name };
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
  for (const plugin of chain(network).reverse()) await runPlugin("DEL", plugin, plugin.config, network, sandbox);
}
