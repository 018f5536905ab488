/**
 * A description of the machine a benchmark ran on, printed above its tables
 * so numbers are never read without their context.
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";

/** What the benchmark tables depend on. */
export interface MachineInfo {
  kernel: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  clocksource: string;
  node: string;
  iptables: string;
  nft: string;
  /** 1-minute load average when described: anything else running skews the numbers. */
  loadAverage: number;
}

function firstLine(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0]!.trim();
  } catch {
    return "not available";
  }
}

function readTrimmed(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "unknown";
  }
}

/**
 * Collects kernel, CPU, memory and tool versions.
 *
 * @example
 * ```ts
 * const info = describeMachine();
 * console.log(info.kernel, info.cpuModel, info.cores);
 * ```
 */
export function describeMachine(): MachineInfo {
  return {
    kernel: release(),
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    clocksource: readTrimmed("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
    node: process.version,
    iptables: firstLine("iptables", ["--version"]),
    nft: firstLine("nft", ["--version"]),
    loadAverage: loadavg()[0]!,
  };
}

/** The machine as lines of `key: value` text. */
export function formatMachine(info: MachineInfo): string {
  return [
    `kernel:      Linux ${info.kernel} (clocksource ${info.clocksource})`,
    `cpu:         ${info.cpuModel}, ${info.cores} cores`,
    `memory:      ${info.memoryGiB} GiB`,
    `node:        ${info.node}`,
    `iptables:    ${info.iptables}`,
    `nftables:    ${info.nft}`,
    `load:        ${info.loadAverage.toFixed(2)} (1-minute average at start)`,
  ].join("\n");
}

/**
 * The first line a tool prints about its version (wrk on stdout with an error status, nginx on stderr),
 * or "not available".
 *
 * @example
 * ```ts
 * toolVersion("/usr/sbin/nginx", ["-v"]); // "nginx version: nginx/1.26.3"
 * ```
 */
export function toolVersion(command: string, args: string[]): string {
  const { stdout, stderr } = spawnSync(command, args, { encoding: "utf8" });
  return `${stdout ?? ""}${stderr ?? ""}`.split("\n")[0]!.trim() || "not available";
}
