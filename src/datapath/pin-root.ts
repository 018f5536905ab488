/**
 * Where a node's datapath is pinned unless told otherwise: the agent pins
 * its maps and links there, and the proxy reads the agent's ipcache from
 * there.
 *
 * @module
 */

/** The pin root of a node's datapath unless told otherwise. */
export const DEFAULT_PIN_ROOT = "/sys/fs/bpf/palisade";
