/**
 * The chained palisade CNI plugin on the real kernel: ADD attaches the
 * agent's pinned programs (from a real Datapath's pin root) to a host
 * interface, CHECK tells attached from not, and ADD without pinned programs
 * asks the runtime to try again. Needs root and bpffs. What needs neither
 * (VERSION, refused configurations) is tested beside the plugin.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCniCommand } from "../../src/cni/plugin.ts";
import { Datapath, pinnedLinksLive } from "../../src/datapath/datapath.ts";
import { createTestInterfaces, uniquePinRoot, type TestInterfaces } from "../lib/kernel.ts";

function config(pinRoot: string, hostName: string): string {
  const prevResult = { cniVersion: "1.0.0", interfaces: [{ name: hostName }, { name: "eth0", sandbox: "/var/run/netns/x" }], ips: [{ address: "10.0.0.2/24", interface: 1 }] };
  return JSON.stringify({ cniVersion: "1.0.0", name: "test-net", type: "palisade", pinRoot, prevResult });
}

function errorOf(stdout: string): { code: number; msg: string } {
  return JSON.parse(stdout) as { code: number; msg: string };
}

describe("the palisade CNI plugin on the kernel", () => {
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
    const outcome = runCniCommand("CHECK", config(pinRoot, interfaces.names[1] ?? ""));
    assert.equal(outcome.exitCode, 1);
    assert.match(errorOf(outcome.stdout).msg, /not attached to ifindex/);
  });

  test("ADD asks the runtime to try again later while no agent has pinned programs", () => {
    const outcome = runCniCommand("ADD", config(uniquePinRoot("cni-none"), interfaces.names[1] ?? ""));
    assert.equal(outcome.exitCode, 1);
    assert.equal(errorOf(outcome.stdout).code, 11);
  });
});
