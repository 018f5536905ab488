/**
 * The journal of kernel objects tests make: a test process killed before its
 * cleanup leaves a network namespace (with a process inside), interfaces and
 * a pin root; the next run's reaper removes all of them, and leaves alone
 * the objects of a process that still runs.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { reapKernelObjects } from "../lib/kernel-journal.ts";
import { uniquePinRoot } from "../lib/kernel.ts";

const kernelJs = fileURLToPath(new URL("../lib/kernel.js", import.meta.url));

function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

test("what a killed test process made is reaped; what a live one made is not", async () => {
  const script = `
    import { NetnsNode, uniquePinRoot } from ${JSON.stringify(kernelJs)};
    import { mkdirSync } from "node:fs";
    const node = new NetnsNode();
    const pod = node.addPod("10.199.${Math.floor(Math.random() * 250)}.2", "fd00:199::2");
    node.spawnIn(pod, "sleep", ["600"]);
    const pin = uniquePinRoot("journal");
    mkdirSync(pin);
    process.stdout.write(JSON.stringify({ netns: pod.netns, hostIf: pod.hostIf, pin }) + "\\n");
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  const made = JSON.parse(line as string) as { netns: string; hostIf: string; pin: string };
  assert.ok(existsSync(`/var/run/netns/${made.netns}`) && linkExists(made.hostIf) && existsSync(made.pin));

  // This process's own pin root, journaled: it runs, so nothing of it is reaped.
  const mine = uniquePinRoot("journal-live");
  mkdirSync(mine);
  try {
    assert.deepEqual(reapKernelObjects().filter((entry) => entry.includes(made.netns)), [], "nothing of a running process is reaped");
    child.kill("SIGKILL");
    await once(child, "exit");
    const reaped = reapKernelObjects();
    assert.ok(reaped.some((entry) => entry.startsWith(`netns ${made.netns} `)), reaped.join("; "));
    assert.ok(!existsSync(`/var/run/netns/${made.netns}`), "the namespace is gone");
    assert.ok(!linkExists(made.hostIf), "the interface is gone");
    assert.ok(!existsSync(made.pin), "the pin root is gone");
    assert.ok(existsSync(mine), "this live process's pin root stays");
  } finally {
    child.kill("SIGKILL");
    rmSync(mine, { recursive: true, force: true });
  }
});
