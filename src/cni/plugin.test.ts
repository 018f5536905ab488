import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { createTestInterfaces, uniquePinRoot, type TestInterfaces } from "../../test/lib/kernel.ts";
import { Datapath, pinnedLinksLive } from "../datapath/datapath.ts";
import { runCniCommand } from "./plugin.ts";

const plugin = fileURLToPath(new URL("./plugin.js", import.meta.url));

function config(pinRoot: string, hostName?: string): string {
  const prevResult = hostName === undefined ? undefined : { cniVersion: "1.0.0", interfaces: [{ name: hostName }, { name: "eth0", sandbox: "/var/run/netns/x" }], ips: [{ address: "10.0.0.2/24", interface: 1 }] };
  return JSON.stringify({ cniVersion: "1.0.0", name: "test-net", type: "palisade", pinRoot, ...(prevResult && { prevResult }) });
}

function errorOf(stdout: string): { code: number; msg: string } {
  return JSON.parse(stdout) as { code: number; msg: string };
}

describe("the palisade CNI plugin", () => {
  let interfaces: TestInterfaces;
  let datapath: Datapath;
  const pinRoot = uniquePinRoot("cni");

  before(() => {
    interfaces = createTestInterfaces(2);
    datapath = Datapath.open({ pinRoot });
  });

  after(() => {
    try {
      datapath.destroy();
    } finally {
      interfaces.remove();
    }
  });

  test("VERSION names the supported versions, through the executable's CNI environment", () => {
    const run = spawnSync(process.execPath, [plugin], { env: { ...process.env, CNI_COMMAND: "VERSION" }, encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { cniVersion: "1.0.0", supportedVersions: ["1.0.0"] });
  });

  test("ADD attaches the agent's pinned programs to the host interface and passes prevResult on", () => {
    const [name] = interfaces.names;
    const [ifindex] = interfaces.ifindexes;
    assert.ok(name !== undefined && ifindex !== undefined);
    const outcome = runCniCommand("ADD", config(pinRoot, name));
    assert.equal(outcome.exitCode, 0, outcome.stdout);
    assert.deepEqual(JSON.parse(outcome.stdout), JSON.parse(config(pinRoot, name)).prevResult);
    assert.deepEqual(datapath.attachedInterfaces(), [ifindex]);
    assert.equal(runCniCommand("CHECK", config(pinRoot, name)).exitCode, 0);
    assert.equal(runCniCommand("ADD", config(pinRoot, name)).exitCode, 0, "ADD again is idempotent");
    assert.equal(runCniCommand("DEL", config(pinRoot, name)).exitCode, 0);
    assert.ok(pinnedLinksLive(pinRoot, ifindex), "DEL leaves the links to go with the interface");
  });

  test("CHECK fails for an interface the programs are not attached to", () => {
    const outcome = runCniCommand("CHECK", config(pinRoot, interfaces.names[1]));
    assert.equal(outcome.exitCode, 1);
    assert.match(errorOf(outcome.stdout).msg, /not attached to ifindex/);
  });

  test("ADD asks the runtime to try again later while no agent has pinned programs", () => {
    const outcome = runCniCommand("ADD", config(uniquePinRoot("cni-none"), interfaces.names[1]));
    assert.equal(outcome.exitCode, 1);
    assert.equal(errorOf(outcome.stdout).code, 11);
  });

  test("refuses a configuration without prevResult or pinRoot, and unknown commands", () => {
    assert.equal(errorOf(runCniCommand("ADD", config(pinRoot)).stdout).code, 7);
    assert.match(errorOf(runCniCommand("ADD", JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "palisade" })).stdout).msg, /pinRoot .* is required/);
    assert.equal(errorOf(runCniCommand("ADD", "not json").stdout).code, 7);
    assert.equal(errorOf(runCniCommand("GC", config(pinRoot, interfaces.names[0])).stdout).code, 4);
  });
});
