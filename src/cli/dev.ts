/**
 * `palisade dev up|down|status`: the local dev cluster. `up` prints only
 * shell exports on stdout, so `eval "$(palisade dev up)"` works; progress
 * and errors go to stderr.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  DevClusterError,
  MAX_NODES,
  devDirFromEnv,
  devDown,
  devLayout,
  devStatus,
  devUp,
  type DevStatus,
} from "../devcluster/index.ts";
import { UsageError } from "./usage-error.ts";
import { shellQuote } from "../shell-quote.ts";

/** Help text of `palisade dev`, for the main help. */
export const DEV_HELP = `  palisade dev up [--nodes N]
      Brings the local dev cluster up (idempotent): builds the control plane binaries once, issues
      certificates, starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
      registers N Nodes (default: as many as the cluster has, 1 for a new one), each a network
      namespace on the cluster's bridge running its node runtime, agent and proxy, and starts the operator.
      The default folder's cluster has network slot 0 (bridge palisade0, 10.240.0.0/24); a cluster in
      any other folder takes a free slot of its own and free ports, so clusters run side by side. A
      first up that fails takes down what it started; what runs keeps running, whichever checkout
      started it (its processes are named), and what is stopped starts from this build. Prints "export KUBECONFIG=..." and "export
      PATH=..." for eval "$(palisade dev up)". State lives in $PALISADE_DEV_DIR (default /var/lib/palisade/dev).
  palisade dev down
      Stops every dev cluster process and removes its state, pod and node namespaces, pins and bridge
      (the binary cache stays).
  palisade dev status
      Each component (running, pid, healthy; the operator too) and the Nodes with their network
      namespace, node runtime, agent and proxy. Exit status 1 if anything is unhealthy or stopped ("palisade
      dev up" restarts it).`;

function progress(line: string): void {
  process.stderr.write(`dev: ${line}\n`);
}

/** --nodes, or undefined: keep the count a running cluster has (1 for a new one). */
function parseNodes(argv: string[]): number | undefined {
  const { values } = parseArgs({ args: argv, options: { nodes: { type: "string" } }, allowPositionals: false });
  if (values.nodes === undefined) return undefined;
  const nodes = Number(values.nodes);
  if (!/^\d+$/.test(values.nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new UsageError(`Cannot bring the dev cluster up: --nodes "${values.nodes}" is not a number from 1 to ${MAX_NODES}`);
  }
  return nodes;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd()).join("\n");
}

/** The text `dev status` prints for `status`. */
export function formatDevStatus(status: DevStatus): string {
  if (status.apiserver === undefined) return `No dev cluster in ${status.dir} (run "palisade dev up")`;
  const lines = [`Dev cluster in ${status.dir}, API server ${status.apiserver}`, ""];
  lines.push(
    table([
      ["COMPONENT", "STATE", "PID", "HEALTHY"],
      ...status.components.map((c) => [c.name, c.running ? "running" : "stopped", c.pid === undefined ? "-" : String(c.pid), c.healthy ? "yes" : "no"]),
    ]),
    "",
  );
  if ("error" in status.nodes) {
    lines.push(`Nodes: unavailable: ${status.nodes.error}`);
  } else if (status.nodes.length === 0) {
    lines.push("Nodes: none");
  } else {
    lines.push(
      table([
        ["NODE", "READY", "INTERNAL-IPS", "POD-CIDRS", "NETNS", "RUNTIME", "AGENT", "PROXY"],
        ...status.nodes.map((n) => [
          n.name,
          n.ready ? "True" : "False",
          n.internalIPs.join(",") || "-",
          n.podCIDRs.join(",") || "-",
          n.netns ?? "-",
          n.runtimePid !== undefined ? `pid ${n.runtimePid}` : n.runtimeStarted ? "stopped" : "-",
          processCell(n.agentUrl, n.agentPid, n.agentHealthy),
          processCell(n.proxyUrl, n.proxyPid, n.proxyHealthy),
        ]),
      ]),
    );
  }
  return lines.join("\n");
}

/** An agent's or proxy's cell: "-" when never started, "stopped", or its pid, health and URL. */
function processCell(url: string | undefined, pid: number | undefined, isHealthy: boolean): string {
  if (url === undefined) return "-";
  if (pid === undefined) return "stopped";
  return `pid ${pid} ${isHealthy ? "healthy" : "unhealthy"} ${url}`;
}

function healthy(status: DevStatus): boolean {
  if ("error" in status.nodes) return false;
  // A node whose runtime, agent and proxy were started must have them running, the agent and proxy answering.
  const nodesHealthy = status.nodes.every((n) => (n.agentUrl === undefined || n.agentHealthy) && (n.proxyUrl === undefined || n.proxyHealthy) && (!n.runtimeStarted || n.runtimePid !== undefined));
  return status.components.length > 0 && status.components.every((c) => c.healthy) && nodesHealthy;
}

/**
 * Runs `palisade dev <argv>` and resolves with the exit status: 0 on
 * success, 2 on usage errors, 1 on failure (or, for `status`, when a
 * component is not healthy).
 *
 * @example
 * ```ts
 * process.exitCode = await runDev(["up", "--nodes", "2"]);
 * ```
 */
export async function runDev(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const layout = devLayout(devDirFromEnv());
  try {
    switch (command) {
      case "up": {
        const nodes = parseNodes(rest);
        const started = Date.now();
        const result = await devUp(layout, { nodes }, progress);
        progress(`cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s: ${result.apiserver}, ${result.nodes.length} node(s)`);
        process.stdout.write(`export KUBECONFIG=${shellQuote(result.adminKubeconfig)}\nexport PATH=${shellQuote(result.binariesDir)}:$PATH\n`);
        return 0;
      }
      case "down":
        if (rest.length > 0) throw new UsageError(`Cannot take the dev cluster down: unexpected argument "${rest[0]}"`);
        await devDown(layout, progress);
        return 0;
      case "status": {
        if (rest.length > 0) throw new UsageError(`Cannot show dev cluster status: unexpected argument "${rest[0]}"`);
        const status = await devStatus(layout);
        process.stdout.write(`${formatDevStatus(status)}\n`);
        return healthy(status) ? 0 : 1;
      }
      default:
        throw new UsageError(command === undefined ? "palisade dev: a subcommand is required: up, down or status" : `Unknown dev subcommand "${command}"; one of up, down, status`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`palisade: ${(error as Error).message}\n`);
      return 2;
    }
    if (error instanceof DevClusterError) {
      process.stderr.write(`palisade: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
