// Runs the compiled test suites with Node's test runner: the unit tests
// beside the code and the benchmarks' helpers, then the real-kernel and
// cluster suites under test/. One file at a time: the kernel suites share
// state such as bpffs, sysctls and the control plane binaries' ports.
//
// Around the run: first it reaps what killed earlier runs left (their dev
// clusters and folders), then it checks that the run itself left nothing
// behind — no process, network namespace, interface, pin, firewall object,
// IPAM file or temporary folder that was not there before — and fails if it did.
import { spawnSync } from "node:child_process";
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
// --test-force-exit: a file whose tests and hooks are done exits even if a handle lingers. One cluster
// suite (k8s-runtime) now and then spun forever in Node's exit-time handle cleanup after every test had
// passed; what it leaves outside the process the leak check below still catches.
const args = ["--test", "--test-reporter=spec", "--test-concurrency=1", "--test-force-exit", ...unit, ...kernel];
const result = spawnSync(process.execPath, args, { stdio: "inherit" });

const leaks = leaksSince(before, snapshotMachine());
// Every test process is gone now: clear their journals (and whatever leaked, so the machine is clean either way).
await reapOrphans();
if (leaks.length > 0) {
  console.error(`run-tests: the run left ${leaks.length} thing(s) behind:\n  ${leaks.join("\n  ")}`);
  process.exit(1);
}
console.error("run-tests: leak check: nothing left behind (processes, network namespaces, interfaces, pins, firewall, IPAM, temporary folders)");
process.exit(result.status ?? 1);
