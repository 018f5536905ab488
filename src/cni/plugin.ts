/**
 * The `palisade` CNI plugin, chained after the plugin that creates a pod's
 * interface (ptp, bridge, …): on ADD it attaches the programs the node's
 * agent pinned to the pod's host-side interface before the runtime starts
 * the pod's containers. The program drops every packet of an interface it
 * has no endpoint entry for, so a new pod is enforced from its first packet:
 * it talks once the agent has written its entry (allow-all when no policy
 * selects it). DEL has nothing to undo: the links go with the interface and
 * the agent prunes their pins. CNI spec 1.0.0.
 *
 * Run as `node plugin.js` with the CNI environment and the network
 * configuration (with `prevResult` and `pinRoot`) on stdin.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { attachPinnedPrograms, pinnedLinksLive } from "../datapath/datapath.ts";

/** The CNI versions this plugin speaks. */
export const SUPPORTED_VERSIONS = ["1.0.0"] as const;

/** The network configuration the plugin reads on stdin. */
export interface PalisadeCniConfig {
  cniVersion: string;
  name: string;
  type: "palisade";
  /** The bpffs directory the node's agent pins its maps and programs in. */
  pinRoot: string;
  /** The result of the previous plugin of the chain. */
  prevResult?: { interfaces?: { name: string; sandbox?: string }[] } & Record<string, unknown>;
}

/** What the plugin prints and how it exits. */
export interface CniOutcome {
  stdout: string;
  exitCode: number;
}

/** CNI well-known error code 11: the runtime should try again later (here: no agent has pinned its programs yet). */
const TRY_AGAIN_LATER = 11;
/** Plugin-specific error codes start at 100. */
const ATTACH_FAILED = 100;
const INVALID_CONFIG = 7;

class CniError extends Error {
  override name = "CniError";
  readonly code: number;
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

function hostInterface(config: PalisadeCniConfig): string {
  const interfaces = config.prevResult?.interfaces;
  if (interfaces === undefined) {
    throw new CniError(INVALID_CONFIG, `Cannot run CNI plugin "palisade" of network "${config.name}": prevResult.interfaces is missing; chain it after the plugin that creates the pod's interface`);
  }
  const host = interfaces.find((i) => i.sandbox === undefined || i.sandbox === "");
  if (host === undefined) throw new CniError(INVALID_CONFIG, `Cannot run CNI plugin "palisade" of network "${config.name}": prevResult.interfaces has no host-side interface (one without "sandbox")`);
  return host.name;
}

function ifindexOf(name: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim());
  } catch (cause) {
    throw new CniError(ATTACH_FAILED, `Cannot find the pod's host interface "${name}" in this network namespace`, { cause });
  }
}

function parseConfig(stdin: string): PalisadeCniConfig {
  let config: PalisadeCniConfig;
  try {
    config = JSON.parse(stdin) as PalisadeCniConfig;
  } catch (cause) {
    throw new CniError(INVALID_CONFIG, "Cannot read the network configuration on stdin: not JSON", { cause });
  }
  if (typeof config.pinRoot !== "string" || config.pinRoot === "") {
    throw new CniError(INVALID_CONFIG, `Cannot run CNI plugin "palisade" of network "${config.name}": pinRoot (the agent's bpffs directory) is required`);
  }
  return config;
}

/**
 * Runs one CNI command; never throws (errors become the CNI error object).
 *
 * @example
 * ```ts
 * const { stdout, exitCode } = runCniCommand("ADD", JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "palisade", pinRoot, prevResult }));
 * ```
 */
export function runCniCommand(command: string | undefined, stdin: string): CniOutcome {
  let cniVersion: string = SUPPORTED_VERSIONS[0];
  try {
    if (command === "VERSION") return { stdout: JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS }), exitCode: 0 };
    const config = parseConfig(stdin);
    cniVersion = config.cniVersion;
    if (command === "DEL") return { stdout: "", exitCode: 0 };
    const ifindex = ifindexOf(hostInterface(config));
    if (command === "ADD") {
      try {
        attachPinnedPrograms(config.pinRoot, ifindex);
      } catch (cause) {
        const missing = /no agent has pinned its programs/.test((cause as Error).message);
        throw new CniError(missing ? TRY_AGAIN_LATER : ATTACH_FAILED, (cause as Error).message, { cause });
      }
      return { stdout: JSON.stringify({ ...config.prevResult, cniVersion }), exitCode: 0 };
    }
    if (command === "CHECK") {
      if (!pinnedLinksLive(config.pinRoot, ifindex)) throw new CniError(ATTACH_FAILED, `Palisade's programs are not attached to ifindex ${ifindex} (pin root "${config.pinRoot}")`);
      return { stdout: "", exitCode: 0 };
    }
    throw new CniError(4, `Cannot run CNI command "${command ?? ""}": the palisade plugin knows ADD, DEL, CHECK and VERSION`);
  } catch (error) {
    const code = error instanceof CniError ? error.code : ATTACH_FAILED;
    return { stdout: JSON.stringify({ cniVersion, code, msg: (error as Error).message }), exitCode: 1 };
  }
}

if (import.meta.main) {
  const { stdout, exitCode } = runCniCommand(process.env.CNI_COMMAND, process.env.CNI_COMMAND === "VERSION" ? "" : readFileSync(0, "utf8"));
  process.stdout.write(stdout);
  process.exitCode = exitCode;
}
