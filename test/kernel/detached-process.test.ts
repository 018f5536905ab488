/**
 * A dev cluster process (node runtime, agent) started detached inside a
 * network namespace: it runs there under its own pid, with the host's
 * mounts. Needs root (a network namespace of its own, removed after).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runningPid, startDetached, stopDetached } from "../../src/devcluster/index.ts";
import { tag } from "../lib/kernel.ts";
import { recordKernelObject } from "../lib/kernel-journal.ts";

const root = mkdtempSync(join(tmpdir(), "pl-detached-"));
const sleep = "/usr/bin/sleep";
let started: number | undefined;

after(() => {
  if (started !== undefined) {
    try {
      process.kill(started, "SIGKILL");
    } catch {
      // Already stopped by the test.
    }
  }
  rmSync(root, { recursive: true, force: true });
});

test("a process started in a network namespace runs there under its own pid", async () => {
  const netns = `pl-dp-${tag()}`;
  recordKernelObject("netns", netns);
  execFileSync("ip", ["netns", "add", netns]);
  try {
    const pidFile = join(root, "netns.pid");
    const pid = startDetached({ name: "sleep", command: sleep, args: ["60"], logFile: join(root, "netns.log"), pidFile, netns });
    started = pid;
    assert.equal(runningPid(pidFile, sleep), pid, "the pid file names the command itself, not the launcher");
    assert.equal(statSync(`/proc/${pid}/ns/net`).ino, statSync(`/var/run/netns/${netns}`).ino);
    assert.equal(statSync(`/proc/${pid}/ns/mnt`).ino, statSync("/proc/self/ns/mnt").ino, "the mounts (bpffs) are the host's");
    assert.equal(await stopDetached("sleep", pidFile, sleep), true);
  } finally {
    execFileSync("ip", ["netns", "del", netns]);
  }
});
