// Runs the compiled test suites with Node's test runner: unit tests (beside
// the code, in parallel) and then the real-kernel suites under test/, one
// file at a time because they share kernel state such as bpffs and sysctls.
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

const unit = testFiles("dist/src");
const kernel = testFiles("dist/test");
const args = ["--test", "--test-reporter=spec", "--test-concurrency=1", ...unit, ...kernel];
const result = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(result.status ?? 1);
