/**
 * Long-running processes that outlive the command starting them: each runs
 * in its own session with output appended to a log file, and is known by a
 * pid file. A pid counts as ours only while /proc says it is the process we
 * expect (see {@linkcode ProcessMatch}), so a recycled pid is never signalled.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DevClusterError } from "./errors.ts";

/**
 * How a pid file's process is known for the one that was started: the
 * absolute path of the executable it runs (a control plane binary, which
 * every user of a folder runs from the folder's recorded cache), or, for a
 * Node.js process of a dev cluster, the executable's name and the cluster's
 * folder, which one of its arguments must lie in: each checkout has a
 * Node.js binary of its own, and any of them may run the cluster's processes.
 */
export type ProcessMatch = string | { executableName: string; dir: string };

/** A process to start detached. */
export interface DetachedProcessSpec {
  /** Name used in messages. */
  name: string;
  /** Absolute path of the executable. */
  command: string;
  /** How a running one is known (default: it runs `command`). */
  match?: ProcessMatch;
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
 * The pid recorded in `pidFile` if that process is alive and is the one
 * `match` describes, else undefined.
 *
 * @example
 * ```ts
 * const pid = runningPid("/var/lib/palisade/dev/run/etcd.pid", binaries.etcd);
 * ```
 */
export function runningPid(pidFile: string, match: ProcessMatch): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isProcess(pid, match) ? pid : undefined;
}

/** The executable `pid` runs: the kernel reports the resolved path, and a binary replaced by a rebuild while running as "<path> (deleted)". */
function executable(pid: number): string {
  return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
}

/** Whether an argument of `pid` lies inside folder `dir`, alone or as a flag's value. */
function namesFolder(pid: number, dir: string): boolean {
  const inside = `${dir.replace(/\/+$/, "")}/`;
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").some((arg) => arg.startsWith(inside) || arg.includes(`=${inside}`));
}

function isProcess(pid: number, match: ProcessMatch): boolean {
  try {
    if (typeof match !== "string") return basename(executable(pid)) === match.executableName && namesFolder(pid, match.dir);
    return executable(pid) === (existsSync(match) ? realpathSync(match) : match);
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
 * Blocks (up to 2 s) until `pid` no longer runs the launcher `launcher` and
 * its command line is in place: it exec'd the real command (or died), so
 * {@link runningPid} answers right from the moment the pid file exists. In
 * the middle of an exec the new executable shows before its arguments do
 * (/proc reads an empty command line until the kernel has set them up), and
 * a process known by an argument would read as gone.
 */
function awaitExec(pid: number, launcher: string): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 400; i++) {
    try {
      if (!readlinkSync(`/proc/${pid}/exe`).endsWith(`/${launcher}`) && readFileSync(`/proc/${pid}/cmdline`).length > 0) return;
    } catch {
      return;
    }
    Atomics.wait(pause, 0, 0, 5);
  }
}

/** How to tell that a detached process is up, for {@link startHealthy}. */
export interface HealthCheck {
  /** Whether the process serves (e.g. answers its health endpoint). */
  healthy(): Promise<boolean>;
  /** How long a start may take. */
  timeoutMs: number;
  /** The error for a start that failed for `reason` (e.g. naming the log to read). */
  failure(reason: string): Error;
}

const HEALTH_POLL_MS = 100;

/**
 * Makes `spec` run and be healthy: starts it unless it runs, then waits
 * until `check` passes. A process found running that exits instead (one on
 * its way out: stopping, crashing) is replaced by a new one; one started
 * here that exits is a failure. Returns the pid and whether it was started.
 *
 * @example
 * ```ts
 * const { started } = await startHealthy(spec, { healthy: () => ping(url), timeoutMs: 60_000, failure: (why) => new Error(why) });
 * ```
 */
export async function startHealthy(spec: DetachedProcessSpec, check: HealthCheck): Promise<{ pid: number; started: boolean }> {
  const found = runningPid(spec.pidFile, spec.match ?? spec.command);
  if (found !== undefined && (await untilHealthy(found, spec, check)) === "healthy") return { pid: found, started: false };
  const pid = startDetached(spec);
  if ((await untilHealthy(pid, spec, check)) === "exited") throw check.failure("it exited");
  return { pid, started: true };
}

async function untilHealthy(pid: number, spec: DetachedProcessSpec, check: HealthCheck): Promise<"healthy" | "exited"> {
  const deadline = Date.now() + check.timeoutMs;
  for (;;) {
    // Alive first: a stranger on the same port must not pass for our process.
    if (!isProcess(pid, spec.match ?? spec.command)) return "exited";
    if (await check.healthy()) return "healthy";
    if (Date.now() > deadline) throw check.failure(`not healthy after ${check.timeoutMs / 1000} s`);
    await sleep(HEALTH_POLL_MS);
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

async function waitForExit(pid: number, match: ProcessMatch, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isProcess(pid, match)) return true;
    await sleep(POLL_MS);
  }
  return !isProcess(pid, match);
}

/**
 * Stops the process of `pidFile` if it is the one `match` describes: SIGTERM, then SIGKILL
 * after `graceMs`. Removes the pid file. Returns whether a process was stopped.
 *
 * @example
 * ```ts
 * await stopDetached("etcd", "/var/lib/palisade/dev/run/etcd.pid", binaries.etcd);
 * ```
 */
export async function stopDetached(name: string, pidFile: string, match: ProcessMatch, graceMs = 10_000): Promise<boolean> {
  const pid = runningPid(pidFile, match);
  if (pid !== undefined) {
    signal(pid, "SIGTERM");
    if (!(await waitForExit(pid, match, graceMs))) {
      signal(pid, "SIGKILL");
      if (!(await waitForExit(pid, match, 5_000))) {
        throw new DevClusterError(`Cannot stop "${name}": pid ${pid} survived SIGKILL`);
      }
    }
  }
  if (existsSync(pidFile)) rmSync(pidFile);
  return pid !== undefined;
}

/** The executables of the processes a dev cluster starts: Node.js for its own, and the control plane's. */
const CLUSTER_EXECUTABLES = new Set(["node", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]);

/**
 * The processes (this one excluded) of a dev cluster's executables with an
 * argument inside folder `dir`: every process a dev cluster starts names its
 * folder (a kubeconfig, a data folder), so this finds them even when their
 * pid files are lost, and leaves alone a user's `tail` of one of its logs.
 *
 * @example
 * ```ts
 * processesUsing("/tmp/pl-dev-x/dev"); // [4242, 4243]
 * ```
 */
export function processesUsing(dir: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .map(Number)
    .filter((pid) => {
      try {
        return CLUSTER_EXECUTABLES.has(basename(executable(pid))) && namesFolder(pid, dir);
      } catch {
        // Gone meanwhile.
        return false;
      }
    });
}

/**
 * Stops every process of {@link processesUsing} `dir`: SIGTERM, then SIGKILL
 * after `graceMs`. Returns the pids it stopped.
 *
 * @example
 * ```ts
 * await stopProcessesUsing("/tmp/pl-dev-x/dev");
 * ```
 */
export async function stopProcessesUsing(dir: string, graceMs = 5_000): Promise<number[]> {
  const pids = processesUsing(dir);
  for (const pid of pids) signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (processesUsing(dir).length > 0 && Date.now() < deadline) await sleep(POLL_MS);
  for (const pid of processesUsing(dir)) signal(pid, "SIGKILL");
  for (let i = 0; i < 50 && processesUsing(dir).length > 0; i++) await sleep(POLL_MS);
  const left = processesUsing(dir);
  if (left.length > 0) throw new DevClusterError(`Cannot stop the processes of "${dir}": pids ${left.join(", ")} survived SIGKILL`);
  return pids;
}
