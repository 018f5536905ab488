// Runs the compiled test suites with Node's test runner: the unit tests
// beside the code and the benchmarks' helpers, then the real-kernel and
// cluster suites under test/. One file at a time, each in its own process:
// the kernel suites share state such as bpffs, sysctls and the control
// plane binaries' ports, and a file that hangs is stopped on its own.
//
// Around the run: first it reaps what killed earlier runs left (their dev
// clusters and folders), then it checks that the run itself left nothing
// behind — no process, network namespace, interface, pin, firewall object,
// IPAM file or temporary folder that was not there before — and fails if it did.
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { leaksSince, snapshotMachine } from "../dist/test/lib/leaks.js";
import { reapOrphans } from "../dist/test/lib/test-folder.js";

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith(".test.js")) out.push(path);
  }
  return out.sort();
}

for (const line of await reapOrphans()) console.error(`run-tests: reaped what a killed run left: ${line}`);
const before = snapshotMachine();

const unit = [...testFiles("dist/src"), ...testFiles("dist/bench")];
const kernel = testFiles("dist/test");

// A file with no output for this long is stuck: it is stopped, and its stuck test reported cancelled.
const IDLE_LIMIT_MS = 5 * 60_000;
// After its summary (or a SIGTERM) a file's process has this long to exit before it is killed.
const EXIT_GRACE_MS = 30_000;

/**
 * Runs one test file in its own process (its tests in that process, so its
 * summary is printed as soon as its tests end) and returns its counts. A
 * process that outlives its summary is killed and judged by the summary (a
 * suite once spun in Node's exit-time cleanup after every test passed); one
 * silent for IDLE_LIMIT_MS gets SIGTERM, which makes the runner report the
 * test it was in as cancelled. Nothing is cut short while it reports.
 */
function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--test", "--test-reporter=spec", "--test-isolation=none", file], { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    let killedBy;
    let idle;
    let exitTimer;
    const stop = (signal, why) => {
      killedBy ??= why;
      child.kill(signal);
      if (signal === "SIGTERM") exitTimer ??= setTimeout(() => child.kill("SIGKILL"), EXIT_GRACE_MS);
    };
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => stop("SIGTERM", `no output for ${IDLE_LIMIT_MS / 60_000} min`), IDLE_LIMIT_MS);
    };
    armIdle();
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      output += chunk;
      armIdle();
      if (/^ℹ duration_ms /m.test(output)) exitTimer ??= setTimeout(() => stop("SIGKILL", `its process did not exit within ${EXIT_GRACE_MS / 1000} s of its summary`), EXIT_GRACE_MS);
    });
    child.on("close", (code) => {
      clearTimeout(idle);
      clearTimeout(exitTimer);
      const count = (name) => Number(output.match(new RegExp(`^ℹ ${name} (\\d+)$`, "m"))?.[1] ?? NaN);
      const counts = { tests: count("tests"), pass: count("pass"), fail: count("fail"), cancelled: count("cancelled") };
      const summarized = Number.isInteger(counts.tests) && counts.fail === 0 && counts.cancelled === 0;
      const ok = killedBy === undefined ? code === 0 : summarized;
      if (killedBy !== undefined) console.error(`run-tests: ${file}: stopped (${killedBy}); ${ok ? "every test had passed" : "counted as failed"}`);
      resolve({ file, ok, ...counts });
    });
  });
}

const results = [];
for (const file of [...unit, ...kernel]) results.push(await runFile(file));
const failed = results.filter((r) => !r.ok);
const total = (name) => results.reduce((sum, r) => sum + (Number.isInteger(r[name]) ? r[name] : 0), 0);
console.error(`run-tests: ${results.length} files, ${total("tests")} tests: ${total("pass")} passed, ${total("fail")} failed, ${total("cancelled")} cancelled`);
for (const r of failed) console.error(`run-tests: failed: ${r.file}`);

const leaks = leaksSince(before, snapshotMachine());
// Every test process is gone now: clear their journals (and whatever leaked, so the machine is clean either way).
await reapOrphans();
if (leaks.length > 0) {
  console.error(`run-tests: the run left ${leaks.length} thing(s) behind:\n  ${leaks.join("\n  ")}`);
  process.exit(1);
}
console.error("run-tests: leak check: nothing left behind (processes, network namespaces, interfaces, pins, firewall, IPAM, temporary folders)");
process.exit(failed.length === 0 ? 0 : 1);
