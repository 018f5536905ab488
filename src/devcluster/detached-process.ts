/**
 * Long-running processes that outlive the command starting them: each runs
 * in its own session with output appended to a log file, and is known by a
 * pid file. A pid counts as ours only while /proc says it runs the expected
 * binary, so a recycled pid is never signalled.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { DevClusterError } from "./errors.ts";

/** A process to start detached. */
export interface DetachedProcessSpec {
  /** Name used in messages. */
  name: string;
  /** Absolute path of the executable. */
  command: string;
  args: string[];
  /** Appended to, never truncated, so a restart keeps the earlier run's output. */
  logFile: string;
  pidFile: string;
  /**
   * A named network namespace (under /var/run/netns) to run in, as a
   * hostNetwork process runs on its node. Only the network namespace
   * changes: `ip netns exec` would also remount /sys, hiding the bpffs at
   * /sys/fs/bpf the agent pins into. nsenter execs the command, so the pid
   * is still the command's.
   */
  netns?: string;
}

/** util-linux's nsenter, which enters namespaces and execs the command. */
const NSENTER = "nsenter";

const POLL_MS = 100;

/**
 * The pid recorded in `pidFile` if that process is alive and runs `command`,
 * else undefined.
 *
 * @example
 * ```ts
 * const pid = runningPid("/var/lib/palisade/dev/run/etcd.pid", binaries.etcd);
 * ```
 */
export function runningPid(pidFile: string, command: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return runsCommand(pid, command) ? pid : undefined;
}

function runsCommand(pid: number, command: string): boolean {
  try {
    const exe = readlinkSync(`/proc/${pid}/exe`);
    // The kernel reports the resolved path; a binary replaced by a rebuild while running reads as "<path> (deleted)".
    const path = existsSync(command) ? realpathSync(command) : command;
    return exe === path || exe === `${path} (deleted)`;
  } catch {
    // No such process, or a zombie whose executable is gone.
    return false;
  }
}

/**
 * Starts `spec` in a new session, writes its pid file and returns the pid.
 *
 * @example
 * ```ts
 * const pid = startDetached({ name: "etcd", command: binaries.etcd, args, logFile, pidFile });
 * ```
 */
export function startDetached(spec: DetachedProcessSpec): number {
  const log = openSync(spec.logFile, "a", 0o644);
  try {
    const [command, args] =
      spec.netns === undefined ? [spec.command, spec.args] : [NSENTER, [`--net=/var/run/netns/${spec.netns}`, "--", spec.command, ...spec.args]];
    const child = spawn(command, args, { detached: true, stdio: ["ignore", log, log] });
    if (child.pid === undefined) throw new DevClusterError(`Cannot start "${spec.name}": ${spec.command} did not start`);
    child.unref();
    if (spec.netns !== undefined) awaitExec(child.pid, command);
    writeFileSync(spec.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/**
 * Blocks (up to 2 s) until `pid` no longer runs the launcher `launcher`: it
 * exec'd the real command (or died), so {@link runningPid} answers right
 * from the moment the pid file exists.
 */
function awaitExec(pid: number, launcher: string): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 400; i++) {
    let exe: string;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return;
    }
    if (!exe.endsWith(`/${launcher}`)) return;
    Atomics.wait(pause, 0, 0, 5);
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    // It exited between the check and the signal: what we wanted.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

async function waitForExit(pid: number, command: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!runsCommand(pid, command)) return true;
    await sleep(POLL_MS);
  }
  return !runsCommand(pid, command);
}

/**
 * Stops the process of `pidFile` if it runs `command`: SIGTERM, then SIGKILL
 * after `graceMs`. Removes the pid file. Returns whether a process was stopped.
 *
 * @example
 * ```ts
 * await stopDetached("etcd", "/var/lib/palisade/dev/run/etcd.pid", binaries.etcd);
 * ```
 */
export async function stopDetached(name: string, pidFile: string, command: string, graceMs = 10_000): Promise<boolean> {
  const pid = runningPid(pidFile, command);
  if (pid !== undefined) {
    signal(pid, "SIGTERM");
    if (!(await waitForExit(pid, command, graceMs))) {
      signal(pid, "SIGKILL");
      if (!(await waitForExit(pid, command, 5_000))) {
        throw new DevClusterError(`Cannot stop "${name}": pid ${pid} survived SIGKILL`);
      }
    }
  }
  if (existsSync(pidFile)) rmSync(pidFile);
  return pid !== undefined;
}
