import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

function palisade(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", env: { ...process.env, PALISADE_DEBUG: "" } });
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

  describe("with an API server that cannot be reached", () => {
    const dir = mkdtempSync(join(tmpdir(), "palisade-cli-"));
    const kubeconfig = join(dir, "kubeconfig");
    // Port 1 on loopback: refused at once.
    writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`);
    after(() => rmSync(dir, { recursive: true, force: true }));

    for (const args of [["wait", "--for=programmed", "--timeout", "5s"], ["status"], ["probe", "--from", "x/a", "--to", "y/b", "--port", "80"], ["probe", "matrix", "--namespaces", "x", "--port", "80"]]) {
      test(`${args.slice(0, 2).join(" ")} prints one line naming the server and exits 1`, () => {
        const run = palisade(...args, "--kubeconfig", kubeconfig);
        assert.equal(run.status, 1, run.stderr);
        assert.match(run.stderr, /^palisade: Cannot reach the Kubernetes API server https:\/\/127\.0\.0\.1:1 \(".*"\): connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
      });
    }

    test("a kubeconfig that cannot be read is named, in one line", () => {
      const run = palisade("status", "--kubeconfig", join(dir, "missing"));
      assert.equal(run.status, 1);
      assert.match(run.stderr, /^palisade: Cannot read kubeconfig ".*missing": ENOENT: no such file or directory, open '.*missing'\n$/);
    });
  });
});
