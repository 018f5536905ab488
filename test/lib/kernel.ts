/**
 * Kernel fixtures for tests: spare interfaces (test runs bind the skb to an
 * existing device, so endpoints need real ifindexes; veth pairs, since not
 * every kernel has the dummy driver), unique bpffs pin roots,
 * and pods as network namespaces wired like the CNI ptp plugin does. Each
 * fixture removes what it made (and journals it first, see kernel-journal.ts,
 * so a killed run's objects are reaped by the next); names carry a random
 * part so that parallel or crashed runs never collide.
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { recordKernelObject } from "./kernel-journal.ts";

/** Runs a command, throwing with its stderr on failure. */
export function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function tryRun(command: string, args: string[]): void {
  try {
    run(command, args);
  } catch {
    // Cleanup of something already gone.
  }
}

/** A short random tag for names of kernel objects. */
export function tag(): string {
  return randomBytes(3).toString("hex");
}

/** A pin root under bpffs that no other run uses (journaled: a killed run's is reaped by the next). */
export function uniquePinRoot(purpose: string): string {
  const root = `/sys/fs/bpf/pl-${purpose}-${tag()}`;
  recordKernelObject("pin", root);
  return root;
}

/** Spare interfaces and their ifindexes. */
export interface TestInterfaces {
  names: string[];
  ifindexes: number[];
  remove(): void;
}

/** Creates `count` interfaces (one end of a veth pair each) in this network namespace. */
export function createTestInterfaces(count: number): TestInterfaces {
  const prefix = `plt${tag()}`;
  const names: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const name = `${prefix}${i}`;
      recordKernelObject("link", name);
      run("ip", ["link", "add", name, "type", "veth", "peer", "name", `${name}p`]);
      names.push(name);
    }
  } catch (error) {
    for (const name of names) tryRun("ip", ["link", "del", name]);
    throw error;
  }
  const ifindexes = names.map((name) => Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim()));
  return {
    names,
    ifindexes,
    remove: () => {
      for (const name of names) tryRun("ip", ["link", "del", name]);
    },
  };
}

/** A pod: a network namespace with eth0, the host side of its veth, and its addresses. */
export interface NetnsPod {
  netns: string;
  hostIf: string;
  ifindex: number;
  ipv4: string;
  ipv6: string;
}

const GATEWAY_V4 = "169.254.1.1";
const GATEWAY_V6 = "fe80::1";

/**
 * A node made of network namespaces: each pod gets a veth whose host side
 * stays in this namespace with a /32 (/128) route to the pod, as the CNI ptp
 * plugin wires it. Forwarding is switched on while the fixture lives and
 * restored after.
 */
export class NetnsNode {
  readonly pods: NetnsPod[] = [];
  private readonly prefix = `pl${tag()}`;
  private readonly sysctls = new Map<string, string>();
  private readonly processes: ChildProcess[] = [];

  constructor() {
    for (const key of ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"]) {
      this.sysctls.set(key, readFileSync(`/proc/sys/${key}`, "utf8").trim());
      writeFileSync(`/proc/sys/${key}`, "1");
    }
  }

  /** Adds a pod with the given addresses. */
  addPod(ipv4: string, ipv6: string): NetnsPod {
    const index = this.pods.length;
    const netns = `${this.prefix}-p${index}`;
    const hostIf = `${this.prefix}h${index}`;
    recordKernelObject("netns", netns);
    recordKernelObject("link", hostIf);
    run("ip", ["netns", "add", netns]);
    const pod: NetnsPod = { netns, hostIf, ifindex: 0, ipv4, ipv6 };
    this.pods.push(pod);
    const inNs = (...args: string[]) => run("ip", ["netns", "exec", netns, ...args]);
    run("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    run("ip", ["link", "set", hostIf, "address", "ee:ee:ee:ee:ee:ee"]);
    run("ip", ["addr", "add", `${GATEWAY_V4}/32`, "dev", hostIf]);
    run("ip", ["-6", "addr", "add", `${GATEWAY_V6}/64`, "dev", hostIf, "nodad"]);
    run("ip", ["link", "set", hostIf, "up"]);
    run("ip", ["route", "add", `${ipv4}/32`, "dev", hostIf]);
    inNs("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0");
    inNs("ip", "link", "set", "lo", "up");
    inNs("ip", "addr", "add", `${ipv4}/32`, "dev", "eth0");
    inNs("ip", "-6", "addr", "add", `${ipv6}/128`, "dev", "eth0", "nodad");
    inNs("ip", "link", "set", "eth0", "up");
    inNs("ip", "route", "add", GATEWAY_V4, "dev", "eth0", "scope", "link");
    inNs("ip", "route", "add", "default", "via", GATEWAY_V4, "dev", "eth0");
    inNs("ip", "-6", "route", "add", "default", "via", GATEWAY_V6, "dev", "eth0");
    run("ip", ["-6", "route", "add", `${ipv6}/128`, "dev", hostIf]);
    pod.ifindex = Number(readFileSync(`/sys/class/net/${hostIf}/ifindex`, "utf8").trim());
    return pod;
  }

  /** Starts a long-running process inside a pod; it is killed on remove(). */
  spawnIn(pod: NetnsPod, command: string, args: string[]): ChildProcess {
    const child = spawn("ip", ["netns", "exec", pod.netns, command, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    this.processes.push(child);
    return child;
  }

  /** Runs a command inside a pod and returns its exit status and output. */
  execIn(pod: NetnsPod, command: string, args: string[], timeoutMs = 10_000): { status: number; stdout: string } {
    try {
      const stdout = execFileSync("ip", ["netns", "exec", pod.netns, command, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        timeout: timeoutMs,
      });
      return { status: 0, stdout };
    } catch (error) {
      const e = error as { status?: number; stdout?: string };
      return { status: e.status ?? 1, stdout: e.stdout ?? "" };
    }
  }

  /** Removes every pod, process and route, and restores the sysctls. */
  remove(): void {
    for (const child of this.processes) child.kill("SIGKILL");
    for (const pod of this.pods) {
      tryRun("ip", ["link", "del", pod.hostIf]);
      tryRun("ip", ["netns", "del", pod.netns]);
    }
    for (const [key, value] of this.sysctls) writeFileSync(`/proc/sys/${key}`, value);
  }
}
