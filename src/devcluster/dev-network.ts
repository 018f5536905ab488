/**
 * The names and addresses of a dev cluster's network, all derived from one
 * small number, its slot. Bridges, node and pod namespaces, uplinks, pin
 * folders and address ranges are machine-wide, so each dev cluster with
 * nodes takes a slot of its own and nothing of two clusters ever collides:
 * the developer's cluster in the default folder always has slot 0 (the
 * addresses the README shows), every other folder (a test's, say) the
 * lowest free slot from 1 on. Slot `k` owns bridge `palisade<k>`, cluster
 * network 10.240.k.0/24 and fd00:10:240:k::/64, pod CIDRs in 10.(244+k).0.0/16
 * and fd00:10:(244+k)::/48, node namespaces `palisade<k>-node-<i>` (slot 0:
 * `palisade-node-<i>`, like the Nodes) and pod namespaces `pal<k>-<i>-…`.
 *
 * @module
 */
import { join } from "node:path";
import { DevClusterError } from "./errors.ts";

/** How many dev clusters with nodes can run on one machine at once. */
export const NETWORK_SLOTS = 8;

/** The slot of the dev cluster in the default folder. */
export const DEFAULT_SLOT = 0;

/** Prefix of every dev Node's name: `palisade-node-1`, `palisade-node-2`, … (the same in every slot: Nodes live in their cluster's API). */
export const NODE_NAME_PREFIX = "palisade-node-";

/** The most nodes a dev cluster has: InternalIPs 1 to 253 of the cluster network (254 is the bridge's). */
export const MAX_NODES = 253;

/** Where the agents of all dev clusters pin under bpffs. */
const BPFFS = "/sys/fs/bpf";

/** The network of one dev cluster with nodes. */
export interface DevNetwork {
  slot: number;
  /** The host bridge that is the cluster network. */
  bridge: string;
  /** The bridge's own addresses, IPv4 then IPv6: the host on the cluster network, where the API server listens. */
  bridgeAddresses: readonly [string, string];
  /** The folder under bpffs holding one pin root per node of this cluster. */
  pinBase: string;
}

/** Names and addresses of one dev node. */
export interface DevNodeSpec {
  /** The Node's name, `palisade-node-<i>`. */
  name: string;
  /** 1-based. */
  index: number;
  /** IPv4 then IPv6. */
  podCIDRs: [string, string];
  /** InternalIP addresses, IPv4 then IPv6. */
  internalIPs: [string, string];
  /** The node's network namespace under /var/run/netns. */
  netns: string;
  /** The host side of the veth pair plugging the node into the bridge (at most 15 characters). */
  uplink: string;
  /** Where the node's agent pins its programs and maps. */
  pinRoot: string;
}

/** What names of slot `slot` carry after their stem: nothing for slot 0, the number otherwise. */
function slotTag(slot: number): string {
  return slot === DEFAULT_SLOT ? "" : String(slot);
}

/**
 * The network of slot `slot` (0 to {@link NETWORK_SLOTS} - 1).
 *
 * @example
 * ```ts
 * devNetwork(1).bridgeAddresses; // ["10.240.1.254", "fd00:10:240:1::fe"]
 * ```
 */
export function devNetwork(slot: number): DevNetwork {
  if (!Number.isInteger(slot) || slot < 0 || slot >= NETWORK_SLOTS) {
    throw new DevClusterError(`Cannot describe dev network slot ${slot}: the slot must be 0 to ${NETWORK_SLOTS - 1}`);
  }
  return {
    slot,
    bridge: `palisade${slot}`,
    bridgeAddresses: [`10.240.${slot}.254`, slot === 0 ? "fd00:10:240::fe" : `fd00:10:240:${slot}::fe`],
    pinBase: join(BPFFS, `palisade-dev${slotTag(slot)}`),
  };
}

/**
 * The spec of node `index` (1 to {@link MAX_NODES}) of the cluster on `network`.
 *
 * @example
 * ```ts
 * devNodeSpec(devNetwork(0), 2).podCIDRs; // ["10.244.2.0/24", "fd00:10:244:2::/64"]
 * devNodeSpec(devNetwork(1), 2).netns; // "palisade1-node-2"
 * ```
 */
export function devNodeSpec(network: DevNetwork, index: number): DevNodeSpec {
  if (!Number.isInteger(index) || index < 1 || index > MAX_NODES) {
    throw new DevClusterError(`Cannot describe dev node ${index}: the index must be 1 to ${MAX_NODES}`);
  }
  const { slot } = network;
  const tag = slotTag(slot);
  const name = `${NODE_NAME_PREFIX}${index}`;
  return {
    name,
    index,
    podCIDRs: [`10.${244 + slot}.${index}.0/24`, `fd00:10:${244 + slot}:${index}::/64`],
    internalIPs: [`10.240.${slot}.${index}`, slot === 0 ? `fd00:10:240::${index}` : `fd00:10:240:${slot}::${index}`],
    netns: `palisade${tag}-node-${index}`,
    uplink: `pl${tag}-node${index}`,
    pinRoot: join(network.pinBase, name),
  };
}

/**
 * The 1-based index of dev Node `name` (`palisade-node-<i>`), or undefined for another name.
 *
 * @example
 * ```ts
 * devNodeIndex("palisade-node-3"); // 3
 * ```
 */
export function devNodeIndex(name: string): number | undefined {
  const match = new RegExp(`^${NODE_NAME_PREFIX}(\\d+)$`).exec(name);
  const index = Number(match?.[1]);
  return match && index >= 1 && index <= MAX_NODES ? index : undefined;
}

/**
 * The network namespace of the sandbox of the pod with uid `uid` on node
 * `node`: `pal<k>-<node index>-<first 8 characters of the uid>`.
 *
 * @example
 * ```ts
 * sandboxNetns(devNodeSpec(devNetwork(0), 1), "0a1b2c3d-4e5f-…"); // "pal-1-0a1b2c3d"
 * ```
 */
export function sandboxNetns(network: DevNetwork, node: Pick<DevNodeSpec, "index">, uid: string): string {
  return `pal${slotTag(network.slot)}-${node.index}-${uid.slice(0, 8)}`;
}

/**
 * Whether network namespace `name` is one of slot `network`'s: a node's or a pod sandbox's.
 *
 * @example
 * ```ts
 * isSlotNetns(devNetwork(1), "pal1-2-0a1b2c3d"); // true
 * isSlotNetns(devNetwork(0), "pal1-2-0a1b2c3d"); // false
 * ```
 */
export function isSlotNetns(network: DevNetwork, name: string): boolean {
  const tag = slotTag(network.slot);
  return new RegExp(`^(palisade${tag}-node-\\d+|pal${tag}-\\d+-[0-9a-f]{8})$`).test(name);
}

/**
 * The node index of node namespace `name` of slot `network`, or undefined when it is not one.
 *
 * @example
 * ```ts
 * nodeNetnsIndex(devNetwork(0), "palisade-node-2"); // 2
 * ```
 */
export function nodeNetnsIndex(network: DevNetwork, name: string): number | undefined {
  const match = new RegExp(`^palisade${slotTag(network.slot)}-node-(\\d+)$`).exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Whether host interface `name` is the uplink of one of `network`'s nodes.
 *
 * @example
 * ```ts
 * isSlotUplink(devNetwork(0), "pl-node2"); // true
 * ```
 */
export function isSlotUplink(network: DevNetwork, name: string): boolean {
  return new RegExp(`^pl${slotTag(network.slot)}-node\\d+$`).test(name);
}
