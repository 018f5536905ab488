/**
 * A journal of the kernel objects tests create (network namespaces,
 * interfaces, bpffs pins), one file per test process under
 * /run/palisade-tests. A test removes what it made; a test process that is
 * killed cannot, so the test runner reaps, before the next run, every object
 * in the journal of a process that is gone: what still runs in its
 * namespaces, the namespaces, the interfaces and the pins.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { processesInNetns } from "../../src/devcluster/index.ts";
import { processStartTime } from "./processes.ts";

const JOURNALS = "/run/palisade-tests";

/** What the journal records. */
export type KernelObjectKind = "netns" | "link" | "pin";

/**
 * Records, before it is created, a kernel object this process is about to make.
 *
 * @example
 * ```ts
 * recordKernelObject("netns", name);
 * execFileSync("ip", ["netns", "add", name]);
 * ```
 */
export function recordKernelObject(kind: KernelObjectKind, name: string): void {
  mkdirSync(JOURNALS, { recursive: true });
  appendFileSync(join(JOURNALS, `${process.pid}-${processStartTime(process.pid)}`), `${kind} ${name}\n`);
}

function removeObject(kind: KernelObjectKind, name: string): boolean {
  const quiet = { stdio: "ignore" } as const;
  switch (kind) {
    case "netns":
      if (!existsSync(join("/var/run/netns", name))) return false;
      for (const pid of processesInNetns(name)) process.kill(pid, "SIGKILL");
      execFileSync("ip", ["netns", "del", name], quiet);
      return true;
    case "link":
      try {
        execFileSync("ip", ["link", "del", name], quiet);
        return true;
      } catch {
        // Gone already (or it went with its namespace or its peer).
        return false;
      }
    case "pin":
      if (!existsSync(name)) return false;
      rmSync(name, { recursive: true, force: true });
      return true;
  }
}

/**
 * Removes what the journals of processes that are gone name, and those
 * journals. Returns the objects it removed, one line each.
 *
 * @example
 * ```ts
 * for (const line of reapKernelObjects()) console.error(`reaped ${line}`);
 * ```
 */
export function reapKernelObjects(): string[] {
  const reaped: string[] = [];
  for (const file of existsSync(JOURNALS) ? readdirSync(JOURNALS) : []) {
    const [pid = "", started = ""] = file.split("-");
    if (processStartTime(Number(pid)) === started) continue;
    const path = join(JOURNALS, file);
    const entries = readFileSync(path, "utf8").split("\n").filter((line) => line !== "");
    // Namespaces first: their processes and the peers of their interfaces go with them.
    const order: KernelObjectKind[] = ["netns", "link", "pin"];
    for (const kind of order) {
      for (const entry of entries.filter((line) => line.startsWith(`${kind} `))) {
        const name = entry.slice(kind.length + 1);
        if (removeObject(kind, name)) reaped.push(`${kind} ${name} (of test process ${pid})`);
      }
    }
    rmSync(path);
  }
  return reaped;
}
