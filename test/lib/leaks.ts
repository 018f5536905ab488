/**
 * The leak check: a snapshot of what tests can leave on a machine (processes
 * of ours, network namespaces, host interfaces, bpffs pins, nftables and
 * iptables objects, CNI IPAM files, temporary folders), and what a later
 * snapshot has that an earlier one had not. The test runner compares the
 * machine before and after the whole run, and suites compare before and
 * after a cluster's life.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { repositoryRoot } from "../../src/repository-root.ts";

/** What a snapshot holds: for each kind, the things present, by a key that names them. */
export type MachineSnapshot = Record<LeakKind, Set<string>>;

/** The kinds of things a snapshot records. */
export type LeakKind = "process" | "netns" | "link" | "pin" | "firewall" | "ipam" | "tmp";

const BPFFS = "/sys/fs/bpf";
const CNI_STATE = ["/var/lib/cni/networks", "/var/lib/cni/results"];
const CONTROL_PLANE = new Set(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]);

/** Where this run keeps temporary folders: tests name theirs `pl-…`. */
const TEMPORARY = tmpdir();

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Processes that are ours: anything running this checkout's code or
 * binaries, or a control plane process (their arguments name the dev
 * folder). Keyed by pid and start time, so a recycled pid is a new process.
 */
function processes(): string[] {
  const root = repositoryRoot();
  return list("/proc")
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .flatMap((pid) => {
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((arg) => arg !== "");
        const exe = basename(readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, ""));
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        if (stat.split(") ")[1]?.[0] === "Z") return [];
        // Node's own path says nothing (a checkout's Node runs anyone's scripts); what it runs does.
        const ours = CONTROL_PLANE.has(exe) || args.slice(exe === "node" ? 1 : 0).some((arg) => arg.startsWith(`${root}/`) || arg.startsWith(join(TEMPORARY, "pl-")));
        // Field 22 of stat (counted after the command's closing parenthesis): the start time.
        const started = stat.split(") ")[1]?.split(" ")[19] ?? "";
        return ours ? [`${pid}@${started} ${args.join(" ").slice(0, 200)}`] : [];
      } catch {
        // Gone meanwhile, or a kernel thread.
        return [];
      }
    });
}

function links(): string[] {
  const parsed = JSON.parse(execFileSync("ip", ["-j", "link", "show"], { encoding: "utf8" })) as { ifname: string }[];
  return parsed.map((link) => link.ifname);
}

/** Pins two levels deep: the dev clusters' and the tests' pin roots and what is in them. */
function pins(): string[] {
  return list(BPFFS).flatMap((top) => {
    const path = join(BPFFS, top);
    const below = statSync(path, { throwIfNoEntry: false })?.isDirectory() ? list(path).map((entry) => join(path, entry)) : [];
    return [path, ...below];
  });
}

/** One line per table, chain, set and rule of the host's nftables (iptables-nft included), counters left out. */
function firewall(): string[] {
  let ruleset: string;
  try {
    ruleset = execFileSync("nft", ["list", "ruleset"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return [];
  }
  const lines: string[] = [];
  const scope: string[] = [];
  for (const raw of ruleset.split("\n")) {
    const line = raw.trim().replace(/ counter packets \d+ bytes \d+/g, " counter");
    if (line === "") continue;
    if (line === "}") {
      scope.pop();
      continue;
    }
    if (line.endsWith("{")) {
      scope.push(line.slice(0, -1).trim());
      lines.push(scope.join(" > "));
      continue;
    }
    lines.push(`${scope.join(" > ")} > ${line}`);
  }
  return lines;
}

function ipam(): string[] {
  return CNI_STATE.flatMap((dir) => list(dir).map((entry) => join(dir, entry)));
}

function temporaryFolders(): string[] {
  return list(TEMPORARY)
    .filter((entry) => entry.startsWith("pl-"))
    .map((entry) => join(TEMPORARY, entry));
}

/**
 * What is on the machine now.
 *
 * @example
 * ```ts
 * const before = snapshotMachine();
 * ```
 */
export function snapshotMachine(): MachineSnapshot {
  return {
    process: new Set(processes()),
    netns: new Set(list("/var/run/netns")),
    link: new Set(links()),
    pin: new Set(pins()),
    firewall: new Set(firewall()),
    ipam: new Set(ipam()),
    tmp: new Set(temporaryFolders()),
  };
}

/**
 * What `after` has that `before` had not, one line each (`kind: name`); empty when nothing leaked.
 *
 * @example
 * ```ts
 * assert.deepEqual(leaksSince(before, snapshotMachine()), []);
 * ```
 */
export function leaksSince(before: MachineSnapshot, after: MachineSnapshot): string[] {
  return (Object.keys(after) as LeakKind[]).flatMap((kind) => [...after[kind]].filter((key) => !before[kind].has(key)).map((key) => `${kind}: ${key}`));
}
