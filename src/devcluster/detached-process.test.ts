import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { runningPid, startDetached, stopDetached } from "./detached-process.ts";

// Starting one in a network namespace needs root: test/kernel/detached-process.test.ts.
const root = mkdtempSync(join(tmpdir(), "pl-detached-"));
const started: number[] = [];
after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already stopped by the test.
    }
  }
  rmSync(root, { recursive: true, force: true });
});

const sleep = "/usr/bin/sleep";
const sh = "/usr/bin/bash";

describe("detached processes", () => {
  test("start in their own session with a log, are found by pid file, and stop on SIGTERM", async () => {
    const pidFile = join(root, "sleep.pid");
    const logFile = join(root, "sleep.log");
    const pid = startDetached({ name: "sleep", command: sleep, args: ["60"], logFile, pidFile });
    started.push(pid);
    assert.equal(runningPid(pidFile, sleep), pid);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    assert.equal(Number(stat[3]), pid, "the process leads its own session");
    assert.equal(await stopDetached("sleep", pidFile, sleep), true);
    assert.equal(runningPid(pidFile, sleep), undefined);
    assert.ok(!existsSync(pidFile));
  });

  test("a pid file naming another program's process is not ours", () => {
    const pidFile = join(root, "other.pid");
    const pid = startDetached({ name: "sleep", command: sleep, args: ["60"], logFile: join(root, "other.log"), pidFile });
    started.push(pid);
    assert.equal(runningPid(pidFile, "/usr/bin/true"), undefined);
  });

  test("a process ignoring SIGTERM is killed after the grace period; output reaches the log", async () => {
    const pidFile = join(root, "stubborn.pid");
    const logFile = join(root, "stubborn.log");
    const pid = startDetached({ name: "stubborn", command: sh, args: ["-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"], logFile, pidFile });
    started.push(pid);
    for (let i = 0; i < 50 && !readFileSync(logFile, "utf8").includes("ready"); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(readFileSync(logFile, "utf8"), /ready/);
    assert.equal(await stopDetached("stubborn", pidFile, sh, 300), true);
    assert.equal(runningPid(pidFile, sh), undefined);
  });

  test("matched by name and folder, a process of another copy of the binary with an argument in the folder is ours", async () => {
    // Another checkout's copy of the binary: the same name at another path.
    const copy = join(root, "copy", "bash");
    mkdirSync(dirname(copy));
    copyFileSync(sh, copy);
    const pidFile = join(root, "copy.pid");
    // The script's name ($0) is the argument in the folder; ": " after sleep keeps bash from exec'ing it.
    const pid = startDetached({ name: "copy", command: copy, args: ["-c", "sleep 60; :", join(root, "dev", "x")], logFile: join(root, "copy.log"), pidFile });
    started.push(pid);
    assert.equal(runningPid(pidFile, sh), undefined, "not by this copy's path");
    assert.equal(runningPid(pidFile, { executableName: "bash", dir: join(root, "elsewhere") }), undefined, "not without an argument in the folder");
    assert.equal(runningPid(pidFile, { executableName: "sleep", dir: join(root, "dev") }), undefined, "not under another name");
    assert.equal(runningPid(pidFile, { executableName: "bash", dir: join(root, "dev") }), pid);
    assert.equal(await stopDetached("copy", pidFile, { executableName: "bash", dir: join(root, "dev") }), true);
  });

  test("stopping what is not running reports false", async () => {
    assert.equal(await stopDetached("none", join(root, "none.pid"), sleep), false);
  });
});
