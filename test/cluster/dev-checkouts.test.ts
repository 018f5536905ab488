/**
 * One dev folder, two checkouts. With a cluster brought up from this
 * checkout, `palisade dev up` from a second one (a build and a Node.js
 * binary of its own, as every checkout has) sees it running, names this
 * checkout and starts nothing beside it, and `dev status` from there sees
 * it running. `dev down` from the second checkout then takes the whole
 * cluster down although a pod's network namespace is gone (its server still
 * running in it), its node runtime was killed and the node's CNI
 * configuration removed, and leaves nothing behind. Needs root and the
 * cached control plane binaries.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { processesUsing } from "../../src/devcluster/index.ts";
import { repositoryRoot } from "../../src/repository-root.ts";
import { DevCli, type CommandRun } from "../lib/dev-cli.ts";
import { leaksSince, snapshotMachine, type MachineSnapshot } from "../lib/leaks.ts";
import { testFolder } from "../lib/test-folder.ts";

const first = new DevCli(testFolder("checkouts"));
const { layout } = first.folder;
const checkout = join(first.folder.root, "checkout");
const NODE = "palisade-node-1";
let machine: MachineSnapshot;

/**
 * Makes `root` a second checkout of this repository: a copy of the build and
 * of the Node.js binary (a hard link where it can be: a path of its own),
 * the rest linked.
 */
function makeCheckout(root: string): void {
  const repository = repositoryRoot();
  mkdirSync(join(root, ".tools", "node", "bin"), { recursive: true });
  for (const entry of readdirSync(repository)) {
    if (!entry.startsWith(".") && entry !== "dist") symlinkSync(join(repository, entry), join(root, entry));
  }
  cpSync(join(repository, "dist"), join(root, "dist"), { recursive: true });
  const node = join(root, ".tools", "node", "bin", "node");
  try {
    linkSync(realpathSync(process.execPath), node);
  } catch {
    // Another file system.
    copyFileSync(realpathSync(process.execPath), node);
  }
}

/** `palisade ARGS` run by the second checkout on the same dev folder. */
function second(...args: string[]): CommandRun {
  const cli = join(checkout, relative(repositoryRoot(), fileURLToPath(new URL("../../src/cli/main.js", import.meta.url))));
  const run = spawnSync(join(checkout, ".tools", "node", "bin", "node"), [cli, ...args], { env: first.env, encoding: "utf8", timeout: 600_000 });
  return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
}

function clusterPids(): number[] {
  return processesUsing(layout.dir).sort((a, b) => a - b);
}

/** The cluster's processes once the same in three reads 300 ms apart: a short-lived one (a CNI plugin run, a CLI call) is not the cluster's. */
async function settledClusterPids(): Promise<number[]> {
  let seen = clusterPids();
  for (let same = 0, reads = 0; same < 2 && reads < 100; reads++) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const now = clusterPids();
    same = now.join() === seen.join() ? same + 1 : 0;
    seen = now;
  }
  return seen;
}

describe("a dev cluster and a second checkout", { timeout: 900_000 }, () => {
  before(() => {
    machine = snapshotMachine();
    makeCheckout(checkout);
    first.up(1);
    first.runPod("home", "web", 1, [80]);
    first.runPod("home", "client", 1, []);
  });

  after(() => first.folder.remove());

  test("dev up from another checkout keeps the running cluster, naming its checkout, and starts nothing", async () => {
    const running = await settledClusterPids();
    const up = second("dev", "up");
    assert.equal(up.status, 0, `dev up from the second checkout:\n${up.stderr}`);
    assert.ok(up.stderr.includes(`runs processes of another checkout, ${repositoryRoot()} (pids `), up.stderr);
    assert.ok(up.stderr.includes(`"PALISADE_DEV_DIR=${layout.dir} palisade dev down"`), up.stderr);
    assert.deepEqual(await settledClusterPids(), running, "no process started or stopped");
    const status = second("dev", "status");
    assert.equal(status.status, 0, `dev status from the second checkout sees every process:\n${status.stdout}`);
    assert.equal(first.reaches("home/client", "home/web", 80), true);
  });

  test("dev down from it finishes past a pod whose namespace and node's CNI configuration are gone, and leaves nothing", async () => {
    const { netns } = first.pod("home", "web");
    const runtime = Number(readFileSync(join(layout.run, `node-runtime-${NODE}.pid`), "utf8").trim());
    process.kill(runtime, "SIGKILL");
    for (let i = 0; i < 100 && existsSync(`/proc/${runtime}`); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    // The name goes; the namespace lives on with the pod server inside it.
    execFileSync("ip", ["netns", "del", netns]);
    rmSync(join(layout.dir, "node-runtime", NODE, "net.d"), { recursive: true });
    const down = second("dev", "down");
    assert.equal(down.status, 0, `dev down from the second checkout:\n${down.stderr}`);
    assert.match(down.stderr, new RegExp(`pod home/web: .*no CNI network configuration.*; its namespace ${netns} is removed without it`));
    assert.deepEqual(clusterPids(), []);
    assert.ok(!existsSync(layout.dir), `${layout.dir} still exists`);
    rmSync(checkout, { recursive: true });
    assert.deepEqual(leaksSince(machine, snapshotMachine()), []);
  });
});
