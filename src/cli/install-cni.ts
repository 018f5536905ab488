/**
 * `palisade install-cni`: the command over src/cni/install.ts.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { InstallError, installCni, keepChained, uninstallCni } from "../cni/install.ts";
import { notADuration, parseDuration } from "../duration.ts";
import { UsageError } from "./usage-error.ts";

/** `palisade install-cni` help text. */
export const INSTALL_CNI_HELP = `  palisade install-cni --conf-dir DIR --bin-dir DIR --pin-root DIR [--lib-dir DIR] [--timeout 5m] [--watch]
                       [--uninstall]
      Installs the palisade CNI plugin on this host: the executable DIR/palisade in --bin-dir and an
      entry at the end of the node's network configuration (the first file of --conf-dir), so a pod's
      interface gets the agent's programs (pinned under --pin-root) before the pod runs. With
      --lib-dir, the plugin's runtime (Node.js, libraries, code) is copied there first, for hosts
      that do not have this installation (the agent image's init container). Waits up to --timeout
      for the node's network plugin to write its configuration. --watch then keeps running (until
      SIGTERM) and chains the plugin again whenever that configuration is rewritten without it
      (the agent DaemonSet's sidecar). --uninstall takes both out again.`;

/** Runs `palisade install-cni`; returns the exit status. */
export async function runInstallCni(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "conf-dir": { type: "string" },
      "bin-dir": { type: "string" },
      "pin-root": { type: "string" },
      "lib-dir": { type: "string" },
      timeout: { type: "string", default: "5m" },
      watch: { type: "boolean", default: false },
      uninstall: { type: "boolean", default: false },
    },
  });
  const confDir = values["conf-dir"];
  const binDir = values["bin-dir"];
  const pinRoot = values["pin-root"];
  if (confDir === undefined || binDir === undefined) throw new UsageError("Cannot install the CNI plugin: --conf-dir and --bin-dir are required");
  const libDir = values["lib-dir"];
  const progress = (line: string): void => void process.stderr.write(`install-cni: ${line}\n`);
  if (values.uninstall) {
    uninstallCni({ confDir, binDir, ...(libDir !== undefined && { libDir }) }, progress);
    return 0;
  }
  if (pinRoot === undefined) throw new UsageError("Cannot install the CNI plugin: --pin-root (the agent's bpffs folder) is required");
  const timeoutMs = parseDuration(values.timeout);
  if (timeoutMs === undefined) throw new UsageError(`Cannot install the CNI plugin: ${notADuration("--timeout", values.timeout)}`);
  try {
    await installCni({ confDir, binDir, pinRoot, ...(libDir !== undefined && { libDir }) }, timeoutMs, progress);
  } catch (error) {
    if (!(error instanceof InstallError)) throw error;
    process.stderr.write(`palisade: ${error.message}\n`);
    return 1;
  }
  if (values.watch) {
    const stop = new AbortController();
    for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => stop.abort());
    await keepChained(confDir, pinRoot, stop.signal, progress);
  }
  return 0;
}
