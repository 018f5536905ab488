import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

function palisade(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8" });
}

describe("palisade", () => {
  for (const command of ["explain", "dev", "wait", "probe", "status", "conformance", "operator", "agent", "install-cni"]) {
    test(`${command} --help prints that command's usage and exits 0`, () => {
      const run = palisade(command, "--help");
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^Usage:\\n  palisade ${command} `));
      assert.doesNotMatch(run.stdout, /palisade help/, "only the command's part");
    });
  }

  test("help lists every command", () => {
    const run = palisade("help");
    assert.equal(run.status, 0);
    for (const command of ["explain", "dev up", "wait", "probe", "status", "conformance", "operator", "agent", "install-cni"]) assert.match(run.stdout, new RegExp(`palisade ${command}`));
  });

  test("a duration flag that is not a duration is a usage error naming the command and the flag", () => {
    const wait = palisade("wait", "--for=programmed", "--timeout", "soon");
    assert.equal(wait.status, 2);
    assert.equal(wait.stderr, 'palisade: Cannot wait: --timeout "soon" is not a duration (e.g. 60s, 2m, 500ms)\n');
    const install = palisade("install-cni", "--conf-dir", "/nonexistent", "--bin-dir", "/nonexistent", "--pin-root", "/nonexistent", "--timeout", "soon");
    assert.equal(install.status, 2);
    assert.equal(install.stderr, 'palisade: Cannot install the CNI plugin: --timeout "soon" is not a duration (e.g. 60s, 2m, 500ms)\n');
  });

  test("an unknown command is a usage error", () => {
    const run = palisade("frobnicate");
    assert.equal(run.status, 2);
    assert.equal(run.stderr, 'palisade: Unknown command "frobnicate"; see "palisade help"\n');
  });
});
