/**
 * `palisade install-cni`: puts the palisade CNI plugin on a node, chained
 * after the node's own network plugin, as the agent DaemonSet's init
 * container does (and `palisade dev up` for each dev node).
 *
 * 1. The executable `<bin-dir>/palisade`: a shell wrapper that runs
 *    src/cni/plugin.ts with Node.js. With `--lib-dir`, the plugin's runtime
 *    (Node.js, the shared libraries it and the native addon load beyond
 *    glibc, the compiled code, the addon) is first copied there, since a
 *    host cannot see into the agent's image; without it, the wrapper runs
 *    the plugin where it is (a host with this checkout).
 * 2. The chain: the node's network configuration (the first file of
 *    `<conf-dir>`, written by the node's network plugin) gets a
 *    `{"type": "palisade", "pinRoot": …}` entry at the end, in place (a
 *    `.conf` becomes a `.conflist`). Waits for that file when the network
 *    plugin has not written it yet.
 *
 * Idempotent; `--watch` keeps the entry there when the network plugin
 * rewrites its file; `--uninstall` takes the entry and the executable out.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep } from "../k8s/backoff.ts";
import { repositoryRoot } from "../repository-root.ts";
import { shellQuote } from "../shell-quote.ts";
import { primaryConfigFile, readNetworkList } from "./config.ts";

/** The plugin's `type`, and so its executable's name. */
export const PLUGIN_TYPE = "palisade";

/** The plugin entry point, relative to the runtime root. */
const PLUGIN_SCRIPT = join("dist", "src", "cni", "plugin.js");

/** Shared libraries every host has (glibc's); the runtime brings the rest. */
const HOST_LIBRARIES = /^(linux-vdso|linux-gate|ld-linux|libc|libm|libdl|libpthread|librt|libresolv)\b/;

/** Where to install. */
export interface InstallOptions {
  /** The runtime's network configuration folder (`/etc/cni/net.d`). */
  confDir: string;
  /** The runtime's plugin folder (`/opt/cni/bin`). */
  binDir: string;
  /** The agent's bpffs pin root, written into the chained entry. */
  pinRoot: string;
  /** Where to copy the plugin's runtime; without it the wrapper runs this installation in place. */
  libDir?: string;
}

/** The installation cannot be done; the message says what is missing. */
export class InstallError extends Error {
  /** Names this error class in stack traces and messages. */
  override name = "InstallError";
}

function writeAtomically(file: string, text: string, mode = 0o644): void {
  const staging = join(dirname(file), `.${basename(file)}.palisade-tmp`);
  writeFileSync(staging, text, { mode });
  chmodSync(staging, mode);
  renameSync(staging, file);
}

/** The shared libraries `file` loads that a host may lack, as `ldd` resolves them. */
function bundledLibraries(file: string): string[] {
  const output = execFileSync("ldd", [file], { encoding: "utf8" });
  return [...output.matchAll(/^\s*(\S+) => (\/\S+)/gm)].filter(([, name]) => !HOST_LIBRARIES.test(name ?? "")).map(([, , path]) => path as string);
}

/**
 * Copies what the plugin needs to run into `<libDir>/runtime` (replacing an
 * older copy in one rename) and returns that folder.
 */
function copyRuntime(libDir: string): string {
  const root = repositoryRoot();
  const addon = join(root, "native", "out", "palisade_native.node");
  const target = join(libDir, "runtime");
  const staging = join(libDir, "runtime.new");
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, "lib"), { recursive: true });
  mkdirSync(join(staging, "native", "out"), { recursive: true });
  copyFileSync(join(root, "package.json"), join(staging, "package.json"));
  cpSync(join(root, "dist", "src"), join(staging, "dist", "src"), { recursive: true, filter: (source) => !source.endsWith(".test.js") });
  copyFileSync(addon, join(staging, "native", "out", "palisade_native.node"));
  copyFileSync(process.execPath, join(staging, "node"));
  chmodSync(join(staging, "node"), 0o755);
  for (const library of new Set([...bundledLibraries(process.execPath), ...bundledLibraries(addon)])) copyFileSync(library, join(staging, "lib", basename(library)));
  const old = join(libDir, "runtime.old");
  rmSync(old, { recursive: true, force: true });
  if (existsSync(target)) renameSync(target, old);
  renameSync(staging, target);
  rmSync(old, { recursive: true, force: true });
  return target;
}

/**
 * Writes `<binDir>/palisade`; returns its path.
 *
 * @example
 * ```ts
 * installPluginExecutable("/opt/cni/bin", "/var/lib/palisade/cni"); // "/opt/cni/bin/palisade"
 * ```
 */
export function installPluginExecutable(binDir: string, libDir?: string): string {
  const executable = join(binDir, PLUGIN_TYPE);
  mkdirSync(binDir, { recursive: true });
  let command: string;
  if (libDir === undefined) {
    command = `exec ${shellQuote(process.execPath)} ${shellQuote(fileURLToPath(new URL("./plugin.js", import.meta.url)))}`;
  } else {
    const runtime = copyRuntime(libDir);
    command = `LD_LIBRARY_PATH=${shellQuote(join(runtime, "lib"))} exec ${shellQuote(join(runtime, "node"))} ${shellQuote(join(runtime, PLUGIN_SCRIPT))}`;
  }
  writeAtomically(executable, `#!/bin/sh\n# The palisade CNI plugin, installed by "palisade install-cni".\n${command}\n`, 0o755);
  return executable;
}

function noNetworkYet(confDir: string): InstallError {
  return new InstallError(`Cannot chain the palisade CNI plugin: no network configuration in "${confDir}" yet (the node's network plugin writes it)`);
}

/**
 * Chains the plugin at the end of the node's network configuration, or
 * updates its `pinRoot`; returns the file and whether it changed.
 *
 * @example
 * ```ts
 * chainPlugin("/etc/cni/net.d", "/sys/fs/bpf/palisade"); // { file: "/etc/cni/net.d/10-ptp.conflist", changed: true }
 * ```
 */
export function chainPlugin(confDir: string, pinRoot: string): { file: string; changed: boolean } {
  const primary = primaryConfigFile(confDir);
  if (primary === undefined) throw noNetworkYet(confDir);
  const list = readNetworkList(primary);
  const entry = { type: PLUGIN_TYPE, pinRoot };
  const plugins = [...list.plugins.filter((p) => p.type !== PLUGIN_TYPE), entry];
  const file = extname(primary) === ".conflist" ? primary : `${primary.slice(0, -extname(primary).length)}.conflist`;
  if (file === primary && JSON.stringify(list.plugins) === JSON.stringify(plugins)) return { file, changed: false };
  writeAtomically(file, `${JSON.stringify({ ...list, plugins }, null, 2)}\n`);
  if (file !== primary) unlinkSync(primary);
  return { file, changed: true };
}

/**
 * Installs the executable, then chains it (so the configuration never names
 * a missing plugin), waiting up to `timeoutMs` for the node's network
 * configuration to appear. Throws {@linkcode InstallError} when it does not.
 *
 * @example
 * ```ts
 * await installCni({ confDir: "/etc/cni/net.d", binDir: "/opt/cni/bin", pinRoot: "/sys/fs/bpf/palisade" }, 300_000);
 * ```
 */
export async function installCni(options: InstallOptions, timeoutMs = 0, progress: (line: string) => void = () => {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  if (primaryConfigFile(options.confDir) === undefined) progress(`waiting for the node's network configuration in ${options.confDir}`);
  while (primaryConfigFile(options.confDir) === undefined && Date.now() < deadline) await sleep(Math.min(1000, deadline - Date.now()));
  if (primaryConfigFile(options.confDir) === undefined) throw noNetworkYet(options.confDir);
  progress(`installed ${installPluginExecutable(options.binDir, options.libDir)}`);
  const { file, changed } = chainPlugin(options.confDir, options.pinRoot);
  progress(changed ? `chained the palisade plugin in ${file}` : `${file} already chains the palisade plugin`);
}

/**
 * Keeps the plugin chained until `signal` fires: a network plugin may
 * rewrite its configuration (on its own restart or upgrade) without the
 * entry, and pods created then would run without the agent's programs.
 * Checks every `periodMs`; a file it cannot read yet is reported and
 * checked again.
 *
 * @example
 * ```ts
 * await keepChained("/etc/cni/net.d", "/sys/fs/bpf/palisade", AbortSignal.timeout(60_000), console.error);
 * ```
 */
export async function keepChained(confDir: string, pinRoot: string, signal: AbortSignal, progress: (line: string) => void, periodMs = 2000): Promise<void> {
  while (await sleep(periodMs, signal)) {
    try {
      const { file, changed } = chainPlugin(confDir, pinRoot);
      if (changed) progress(`chained the palisade plugin in ${file} again`);
    } catch (error) {
      progress((error as Error).message);
    }
  }
}

/**
 * Takes the plugin out of the node's network configuration, then removes
 * its executable and runtime copy.
 *
 * @example
 * ```ts
 * uninstallCni({ confDir: "/etc/cni/net.d", binDir: "/opt/cni/bin" });
 * ```
 */
export function uninstallCni(options: Omit<InstallOptions, "pinRoot">, progress: (line: string) => void = () => {}): void {
  const primary = primaryConfigFile(options.confDir);
  if (primary !== undefined) {
    const list = readNetworkList(primary);
    const plugins = list.plugins.filter((p) => p.type !== PLUGIN_TYPE);
    if (plugins.length !== list.plugins.length) {
      writeAtomically(primary, `${JSON.stringify({ ...list, plugins }, null, 2)}\n`);
      progress(`unchained the palisade plugin from ${primary}`);
    }
  }
  rmSync(join(options.binDir, PLUGIN_TYPE), { force: true });
  if (options.libDir !== undefined) rmSync(join(options.libDir, "runtime"), { recursive: true, force: true });
}
