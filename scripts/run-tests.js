// Runs the compiled test suites with Node's test runner: the unit tests
// beside the code and the benchmarks' helpers, then the real-kernel and
// cluster suites under test/. One file at a time: the kernel suites share
// state such as bpffs, sysctls and the control plane binaries' ports.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith(".test.js")) out.push(path);
  }
  return out.sort();
}

const unit = [...testFiles("dist/src"), ...testFiles("dist/bench")];
const kernel = testFiles("dist/test");
const args = ["--test", "--test-reporter=spec", "--test-concurrency=1", ...unit, ...kernel];
const result = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(result.status ?? 1);
