/**
 * CNI network configuration files as container runtimes read them: a
 * folder like `/etc/cni/net.d` whose first file by name (with extension
 * `.conf`, `.conflist` or `.json`) is the node's network. A `.conflist`
 * holds a chain of plugins; a `.conf` holds one plugin and is read as a
 * chain of one.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";

/** File extensions runtimes take for network configuration. */
export const CONFIG_EXTENSIONS: readonly string[] = [".conf", ".conflist", ".json"];

/** One plugin of a chain; `type` names its executable. */
export interface PluginConfig {
  type: string;
  [field: string]: unknown;
}

/** A network: a chain of plugins run in order on ADD and in reverse on DEL. */
export interface NetworkList {
  cniVersion: string;
  name: string;
  plugins: PluginConfig[];
  [field: string]: unknown;
}

/** A configuration file that cannot be used; the message names the file and field. */
export class CniConfigError extends Error {
  /** Names this error class in stack traces and messages. */
  override name = "CniConfigError";
}

/**
 * The file runtimes take the network from: the first one by name with a
 * configuration extension; `undefined` when the folder has none (or does not exist).
 *
 * @example
 * ```ts
 * primaryConfigFile("/etc/cni/net.d"); // "/etc/cni/net.d/10-flannel.conflist"
 * ```
 */
export function primaryConfigFile(confDir: string): string | undefined {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch {
    return undefined;
  }
  const first = names.filter((name) => CONFIG_EXTENSIONS.includes(extname(name))).sort()[0];
  return first === undefined ? undefined : join(confDir, first);
}

/**
 * Reads a configuration file as a chain: a `.conf` (or a `.json` without
 * `plugins`) becomes a chain of its one plugin.
 *
 * @example
 * ```ts
 * readNetworkList("/etc/cni/net.d/10-ptp.conf").plugins[0]?.type; // "ptp"
 * ```
 */
export function readNetworkList(file: string): NetworkList {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new CniConfigError(`Cannot read CNI network configuration "${file}": ${(cause as Error).message}`, { cause });
  }
  const config = value as Record<string, unknown> | null;
  if (config === null || typeof config !== "object" || Array.isArray(config)) throw new CniConfigError(`Cannot read CNI network configuration "${file}": not a JSON object`);
  if (typeof config.name !== "string" || config.name === "") throw new CniConfigError(`Cannot read CNI network configuration "${file}": name is missing`);
  const cniVersion = typeof config.cniVersion === "string" ? config.cniVersion : "1.0.0";
  const plugins = "plugins" in config ? config.plugins : [config];
  if (!Array.isArray(plugins) || plugins.length === 0) throw new CniConfigError(`Cannot read CNI network configuration "${file}": plugins is not a non-empty list`);
  plugins.forEach((plugin: unknown, i) => {
    if (typeof (plugin as { type?: unknown } | null)?.type !== "string") throw new CniConfigError(`Cannot read CNI network configuration "${file}": plugins[${i}].type is missing`);
  });
  if ("plugins" in config) return { ...config, cniVersion, name: config.name, plugins: plugins as PluginConfig[] };
  const { name, ...plugin } = config;
  return { cniVersion, name, plugins: [{ ...(plugin as PluginConfig), cniVersion }] };
}
