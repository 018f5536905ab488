import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { runCniCommand } from "./plugin.ts";

// What touches the kernel (ADD, CHECK, DEL on real interfaces) is in test/kernel/cni-plugin.test.ts.
const plugin = fileURLToPath(new URL("./plugin.js", import.meta.url));
const PIN_ROOT = "/sys/fs/bpf/pl-cni-unused";

function config(hostName?: string): string {
  const prevResult = hostName === undefined ? undefined : { cniVersion: "1.0.0", interfaces: [{ name: hostName }, { name: "eth0", sandbox: "/var/run/netns/x" }], ips: [{ address: "10.0.0.2/24", interface: 1 }] };
  return JSON.stringify({ cniVersion: "1.0.0", name: "test-net", type: "palisade", pinRoot: PIN_ROOT, ...(prevResult && { prevResult }) });
}

function errorOf(stdout: string): { code: number; msg: string } {
  return JSON.parse(stdout) as { code: number; msg: string };
}

describe("the palisade CNI plugin", () => {
  test("VERSION names the supported versions, through the executable's CNI environment", () => {
    const run = spawnSync(process.execPath, [plugin], { env: { ...process.env, CNI_COMMAND: "VERSION" }, encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { cniVersion: "1.0.0", supportedVersions: ["1.0.0"] });
  });

  test("refuses a configuration without prevResult or pinRoot, and unknown commands", () => {
    assert.equal(errorOf(runCniCommand("ADD", config()).stdout).code, 7);
    assert.match(errorOf(runCniCommand("ADD", JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "palisade" })).stdout).msg, /pinRoot .* is required/);
    assert.equal(errorOf(runCniCommand("ADD", "not json").stdout).code, 7);
    assert.equal(errorOf(runCniCommand("GC", config("lo")).stdout).code, 4);
  });
});
