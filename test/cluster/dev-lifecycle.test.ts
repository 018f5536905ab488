/**
 * Dev clusters never collide and never leak. With one cluster running (it
 * stands for a developer's `./scripts/demo.sh`), a second comes up beside
 * it on a network slot of its own, runs pods and a policy, and goes down
 * leaving the machine exactly as it found it (the leak check: processes,
 * network namespaces, interfaces, pins, firewall, IPAM files, temporary
 * folders); a first `dev up` that fails takes down what it started; a run
 * killed in the middle of `dev up` is reaped by the next run's cleanup. The
 * first cluster serves its pods throughout. Needs root and the cached
 * control plane binaries.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { DEV_UP_STEPS, DevClusterError, devUp, type DevUpStep } from "../../src/devcluster/index.ts";
import { DevCli } from "../lib/dev-cli.ts";
import { leaksSince, snapshotMachine } from "../lib/leaks.ts";
import { reapOrphans, testFolder } from "../lib/test-folder.ts";

const home = new DevCli(testFolder("home"));

/** The home cluster's pods still talk: nothing done beside it disturbed it. */
function assertHomeServes(): void {
  assert.equal(home.reaches("home/client", "home/web", 80), true, "home/client reaches home/web");
}

describe("dev clusters side by side, and nothing left behind", { timeout: 900_000 }, () => {
  before(() => {
    home.up(1);
    home.runPod("home", "web", 1, [80]);
    home.runPod("home", "client", 1, []);
    assertHomeServes();
  });

  after(() => home.folder.remove());

  test("a second cluster comes up beside a running one on a slot of its own, runs pods and a policy, and its whole life leaves nothing behind", () => {
    const before = snapshotMachine();
    const other = new DevCli(testFolder("other"));
    try {
      other.up(2);
      const [ours, theirs] = [home.network(), other.network()];
      assert.notEqual(theirs.slot, ours.slot);
      assert.notEqual(theirs.bridge, ours.bridge);
      assert.notDeepEqual(other.node(1).podCIDRs, home.node(1).podCIDRs);
      assert.equal(other.kube("get", "nodes", "-o", "name"), "node/palisade-node-1\nnode/palisade-node-2\n");
      other.runPod("shop", "api", 2, [8080]);
      other.runPod("shop", "frontend", 1, []);
      other.runPod("shop", "worker", 1, []);
      other.apply({
        apiVersion: "palisade.dev/v1alpha1",
        kind: "EBPFNetworkPolicy",
        metadata: { name: "api-from-frontend", namespace: "shop" },
        spec: { selector: { matchLabels: { app: "api" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "frontend" } } }], ports: [{ protocol: "TCP", port: 8080 }] }] },
      });
      other.ok("wait", "--for=programmed", "--timeout", "60s");
      assert.equal(other.reaches("shop/frontend", "shop/api", 8080), true);
      assert.equal(other.reaches("shop/worker", "shop/api", 8080), false);
      assertHomeServes();
      other.ok("dev", "down");
    } finally {
      // The folder only: everything else must be gone already, and the leak check says whether it is.
      rmSync(other.folder.root, { recursive: true, force: true });
    }
    assert.deepEqual(leaksSince(before, snapshotMachine()), []);
    assertHomeServes();
  });

  test("a first dev up that fails takes down everything it started", async () => {
    const before = snapshotMachine();
    const failed = testFolder("failed");
    const lastStep: DevUpStep = {
      name: "fail on purpose",
      async run() {
        throw new DevClusterError("Cannot go on: failing on purpose after every other step");
      },
    };
    try {
      await assert.rejects(devUp(failed.layout, { nodes: 1 }, () => {}, [...DEV_UP_STEPS, lastStep]), /failing on purpose/);
      assert.deepEqual(readdirSync(failed.root).filter((entry) => entry !== ".test-owner"), [], "the dev folder is gone");
    } finally {
      rmSync(failed.root, { recursive: true, force: true });
    }
    assert.deepEqual(leaksSince(before, snapshotMachine()), []);
    assertHomeServes();
  });

  test("a run killed in the middle of dev up leaves only what the next run reaps", async () => {
    const before = snapshotMachine();
    const testFolderJs = fileURLToPath(new URL("../lib/test-folder.js", import.meta.url));
    const devClusterJs = fileURLToPath(new URL("../../src/devcluster/index.js", import.meta.url));
    // A test process of its own, killed with SIGKILL once its cluster's agents are starting: nothing of its own cleanup runs.
    const script = `
      import { testFolder } from ${JSON.stringify(testFolderJs)};
      import { devUp } from ${JSON.stringify(devClusterJs)};
      const folder = testFolder("killed");
      process.stdout.write(folder.root + "\\n");
      await devUp(folder.layout, { nodes: 2 }, (line) => process.stdout.write(line + "\\n"));
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let root = "";
    for await (const line of createInterface({ input: child.stdout })) {
      if (root === "") root = line;
      if (line.startsWith("started the agent of")) break;
    }
    child.kill("SIGKILL");
    await once(child, "exit");
    assert.ok(root !== "" && existsSync(root), "the killed run made its folder");
    const reaped = await reapOrphans();
    assert.ok(reaped.includes(`test folder ${root}`), `reaped: ${reaped.join("; ")}`);
    assert.deepEqual(leaksSince(before, snapshotMachine()), []);
    assertHomeServes();
  });
});
