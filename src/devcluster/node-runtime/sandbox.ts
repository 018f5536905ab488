/**
 * A pod sandbox: the pod's network namespace, wired by CNI, with the pod
 * server running inside. Each sandbox is recorded in the runtime's state
 * folder as it is built, so a later run (or `dev down`) can adopt or remove
 * whatever a previous one left behind, even half-built.
 *
 * @module
 */
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { POD_INTERFACE, cniAdd, cniDel, type CniNetwork } from "./cni.ts";
import { NodeRuntimeError } from "./errors.ts";
import { podServerPortArg } from "./pod-server.ts";
import type { PodServerPort } from "./pod-server.ts";

/** What is recorded about one sandbox. */
export interface SandboxRecord {
  /** The pod's uid (also the CNI container id). */
  uid: string;
  namespace: string;
  name: string;
  /** The network namespace under /var/run/netns. */
  netns: string;
  /** The ports the pod server serves. */
  ports: PodServerPort[];
  /** The pod's addresses, IPv4 then IPv6; empty until CNI ADD succeeded. */
  ips: string[];
  /** The host side of the pod's veth pair; empty until CNI ADD succeeded. */
  hostInterface: string;
  /** The pod server's pid; 0 until it runs. */
  serverPid: number;
  /** When the pod server became ready (RFC 3339). */
  startedAt: string;
}

/** Where a node runtime keeps its state. */
export interface SandboxStore {
  /** The runtime's state folder. */
  stateDir: string;
  /** The node's CNI network (its IPAM data lives inside `stateDir`). */
  network: CniNetwork;
}

const POD_SERVER = fileURLToPath(new URL("./pod-server.js", import.meta.url));
const READY_TIMEOUT_MS = 15_000;

function podsDir(store: SandboxStore): string {
  return join(store.stateDir, "pods");
}

function logsDir(store: SandboxStore): string {
  return join(store.stateDir, "logs");
}

function writeRecord(store: SandboxStore, record: SandboxRecord): void {
  mkdirSync(podsDir(store), { recursive: true });
  const file = join(podsDir(store), `${record.uid}.json`);
  // Write then rename, so a crash never leaves a half-written record.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/**
 * Every sandbox recorded in `store`.
 *
 * @example
 * ```ts
 * for (const record of listSandboxes(store)) console.log(record.netns);
 * ```
 */
export function listSandboxes(store: SandboxStore): SandboxRecord[] {
  const dir = podsDir(store);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .map((file) => JSON.parse(readFileSync(join(dir, file), "utf8")) as SandboxRecord);
}

function ip(...args: string[]): string {
  try {
    return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr?.trim() ?? "";
    throw new NodeRuntimeError(`Cannot run "ip ${args.join(" ")}": ${stderr}`, { cause });
  }
}

function netnsExists(netns: string): boolean {
  return existsSync(join("/var/run/netns", netns));
}

/**
 * Whether the pid of `record`'s pod server lives and serves that pod: it runs
 * a pod server script (this build's or, for a runtime another checkout
 * started, that one's) for the pod, so a recycled pid is never taken for it.
 */
function podServerAlive(record: SandboxRecord): boolean {
  if (record.serverPid <= 0) return false;
  try {
    if (readFileSync(`/proc/${record.serverPid}/stat`, "utf8").split(") ")[1]?.[0] === "Z") return false;
    const args = readFileSync(`/proc/${record.serverPid}/cmdline`, "utf8").split("\0");
    return args.some((arg) => basename(arg) === basename(POD_SERVER)) && args.includes(podArg(record));
  } catch {
    return false;
  }
}

/**
 * Whether the pod server of `record` still runs: the pid lives, runs the pod
 * server for the pod and sits in the sandbox's namespace.
 *
 * @example
 * ```ts
 * if (!sandboxServerRunning(record)) await destroySandbox(store, record);
 * ```
 */
export function sandboxServerRunning(record: SandboxRecord): boolean {
  if (!podServerAlive(record)) return false;
  try {
    // Same network namespace = same nsfs inode. (`ip netns identify` scans every named namespace and
    // fails while another one is being created or removed, which made live servers look dead.)
    return statSync(`/proc/${record.serverPid}/ns/net`).ino === statSync(`/var/run/netns/${record.netns}`).ino;
  } catch {
    return false;
  }
}

function podArg(record: SandboxRecord): string {
  return `--pod=${record.namespace}/${record.name}`;
}

function startServer(store: SandboxStore, record: SandboxRecord): Promise<number> {
  mkdirSync(logsDir(store), { recursive: true });
  const log = openSync(join(logsDir(store), `${record.netns}.log`), "a", 0o644);
  const args = [podArg(record), ...record.ports.map(podServerPortArg)];
  // `ip netns exec` execs the command, so the child's pid is the server's.
  // Detached: the pod keeps serving across a restart of its node runtime.
  const child = spawn("ip", ["netns", "exec", record.netns, process.execPath, POD_SERVER, ...args], { detached: true, stdio: ["ignore", "pipe", log] });
  closeSync(log);
  const what = `pod "${record.namespace}/${record.name}"`;
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(new NodeRuntimeError(`Cannot start the server of ${what}: not ready after ${READY_TIMEOUT_MS} ms`));
    }, READY_TIMEOUT_MS);
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      child.removeAllListeners();
      child.stdout?.removeAllListeners();
      child.stdout?.destroy();
      child.unref();
      if (error) reject(error);
      else resolve(child.pid as number);
    };
    child.on("error", (cause) => finish(new NodeRuntimeError(`Cannot start the server of ${what}: ${cause.message}`, { cause })));
    child.on("exit", (code, signal) => finish(new NodeRuntimeError(`Cannot start the server of ${what}: it exited (${signal ?? code}) before it was ready; see ${join(logsDir(store), `${record.netns}.log`)}`)));
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      if (output.includes("ready\n")) finish();
    });
  });
}

/**
 * Builds the sandbox of a pod: the network namespace, CNI ADD, the pod
 * server on `ports`. Records every stage, so a failure part-way leaves a
 * record that {@linkcode destroySandbox} cleans up.
 *
 * @example
 * ```ts
 * const record = await createSandbox(store, { uid, namespace: "x", name: "a", netns: sandboxNetns(devNetwork(0), node, uid), ports: [{ port: 80, protocol: "TCP" }] });
 * ```
 */
export async function createSandbox(
  store: SandboxStore,
  pod: Pick<SandboxRecord, "uid" | "namespace" | "name" | "netns" | "ports">,
): Promise<SandboxRecord> {
  const record: SandboxRecord = { ...pod, ips: [], hostInterface: "", serverPid: 0, startedAt: "" };
  try {
    await buildSandbox(store, record);
  } catch (error) {
    // Nothing half-built stays: the addresses go back to IPAM and the next try starts clean.
    await destroySandbox(store, record);
    throw error;
  }
  return record;
}

async function buildSandbox(store: SandboxStore, record: SandboxRecord): Promise<void> {
  writeRecord(store, record);
  if (!netnsExists(record.netns)) ip("netns", "add", record.netns);
  ip("-n", record.netns, "link", "set", "lo", "up");
  // No duplicate address detection on the pod's interfaces, as container runtimes configure pod
  // namespaces: the namespace is new and its addresses come from IPAM, and a tentative IPv6 address
  // would refuse traffic for a second or two after the pod reports Ready.
  for (const key of ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]) {
    execFileSync("ip", ["netns", "exec", record.netns, "sysctl", "-qw", key]);
  }
  const wired = await cniAdd(store.network, { containerId: record.uid, netns: record.netns });
  record.ips = wired.ips;
  record.hostInterface = wired.hostInterface;
  writeRecord(store, record);
  await settleHostAddresses(record.hostInterface);
  record.serverPid = await startServer(store, record);
  record.startedAt = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  writeRecord(store, record);
}

/**
 * Why the sandbox of `record` cannot serve its pod any more, or undefined
 * when its network is whole: its namespace, its interface and its `families`
 * addresses are there (the pod server is checked apart, see
 * {@linkcode sandboxServerRunning}: it can be restarted in place).
 *
 * @example
 * ```ts
 * const broken = sandboxDamage(record, 2); // "network namespace \"pal-1-0a1b2c3d\" is gone"
 * ```
 */
export function sandboxDamage(record: SandboxRecord, families: number): string | undefined {
  if (record.ips.length !== families) return `its network was never completed (${record.ips.length} of ${families} addresses)`;
  if (!netnsExists(record.netns)) return `network namespace "${record.netns}" is gone`;
  const addresses = ip("-n", record.netns, "-o", "addr", "show", "dev", POD_INTERFACE);
  const missing = record.ips.filter((address) => !addresses.includes(` ${address}/`));
  if (missing.length > 0) return `address ${missing.join(", ")} is gone from ${POD_INTERFACE}`;
  return undefined;
}

/**
 * Starts the pod server of `record` again in its sandbox, which keeps its
 * namespace and addresses (for a server that died while its network stayed whole).
 *
 * @example
 * ```ts
 * if (!sandboxServerRunning(record)) await restartSandboxServer(store, record);
 * ```
 */
export async function restartSandboxServer(store: SandboxStore, record: SandboxRecord): Promise<void> {
  record.serverPid = await startServer(store, record);
  writeRecord(store, record);
}

/**
 * Waits (up to 10 s) until the host side of the pod's veth has no tentative
 * IPv6 address: the node's duplicate address detection runs there (the pod
 * side has it off), and until it ends the node cannot answer the pod over IPv6.
 */
async function settleHostAddresses(hostInterface: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const tentative = execFileSync("ip", ["-6", "-o", "addr", "show", "dev", hostInterface, "tentative"], { encoding: "utf8" }).trim();
    if (tentative === "") return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new NodeRuntimeError(`Cannot finish the sandbox: IPv6 addresses of "${hostInterface}" stayed tentative for 10 s`);
}

async function killServer(pid: number): Promise<void> {
  process.kill(pid, "SIGKILL");
  // Wait until it is gone (or a zombie), so the namespace it holds is released with it.
  for (let i = 0; i < 200; i++) {
    try {
      if (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] === "Z") return;
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new NodeRuntimeError(`Cannot stop pod server pid ${pid}: it still runs 2 s after SIGKILL`);
}

/**
 * Tears a sandbox down: stops its server, CNI DEL (releasing its addresses),
 * deletes the namespace and the record. Idempotent. A CNI DEL that fails
 * throws and keeps the record, for another try; with `onCniFailure` (for
 * `dev down`, which then removes the node's network and its IPAM leases
 * whole) it is handed the error instead and the rest goes on.
 *
 * @example
 * ```ts
 * await destroySandbox(store, record);
 * ```
 */
export async function destroySandbox(store: SandboxStore, record: SandboxRecord, onCniFailure?: (error: Error) => void): Promise<void> {
  // Whether or not its namespace still has a name: a server left running would keep a nameless one alive.
  if (podServerAlive(record)) await killServer(record.serverPid);
  try {
    // CNI DEL must also run for a namespace that is already gone: the IPAM lease is released by container id.
    await cniDel(store.network, { containerId: record.uid, netns: record.netns });
  } catch (error) {
    if (onCniFailure === undefined) throw error;
    onCniFailure(error as Error);
  }
  if (netnsExists(record.netns)) ip("netns", "del", record.netns);
  rmSync(join(podsDir(store), `${record.uid}.json`), { force: true });
  rmSync(join(logsDir(store), `${record.netns}.log`), { force: true });
}
