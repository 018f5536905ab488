/**
 * `palisade install-cni` as the agent DaemonSet's init container runs it,
 * with --lib-dir: the plugin's runtime is copied out of this installation,
 * the node's single-plugin `.conf` becomes a chain ending in the palisade
 * plugin, and a runtime running that chain from the configuration folder
 * gets a pod interface with the agent's programs attached by the copied
 * plugin. Needs root (network namespaces, BPF).
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { readNetworkList } from "../../src/cni/config.ts";
import { Datapath, pinnedLinksLive } from "../../src/datapath/datapath.ts";
import { ifNameToIndex } from "../../src/datapath/native.ts";
import { CNI_PATH, cniAdd, cniDel, type CniNetwork } from "../../src/devcluster/node-runtime/index.ts";
import { eventually } from "../lib/eventually.ts";
import { uniquePinRoot } from "../lib/kernel.ts";
import { recordKernelObject } from "../lib/kernel-journal.ts";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "pl-install-cni-"));
const confDir = join(root, "net.d");
const binDir = join(root, "bin");
const libDir = join(root, "lib");
const pinRoot = uniquePinRoot("install-cni");
const netns = `pl-icni-${process.pid}`;
const network: CniNetwork = { confDir, binDirs: [binDir, CNI_PATH] };
const sandbox = { containerId: `install-cni-${process.pid}`, netns };

function installCni(...extra: string[]): { status: number | null; stderr: string } {
  return spawnSync(process.execPath, [MAIN, "install-cni", "--conf-dir", confDir, "--bin-dir", binDir, "--lib-dir", libDir, "--pin-root", pinRoot, ...extra], { encoding: "utf8" });
}

describe("palisade install-cni", () => {
  let datapath: Datapath;

  before(() => {
    execFileSync("mkdir", ["-p", confDir]);
    writeFileSync(
      join(confDir, "10-test.conf"),
      JSON.stringify({ cniVersion: "1.0.0", name: "install-cni-test", type: "ptp", ipMasq: false, ipam: { type: "host-local", ranges: [[{ subnet: "10.251.0.0/24" }]], dataDir: join(root, "ipam") } }),
    );
    recordKernelObject("netns", netns);
    execFileSync("ip", ["netns", "add", netns]);
    datapath = Datapath.open({ pinRoot });
  });

  after(async () => {
    try {
      await cniDel(network, sandbox).catch(() => undefined);
      datapath.destroy();
    } finally {
      spawnSync("ip", ["netns", "del", netns]);
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("chains the plugin after the node's network, turning its .conf into a .conflist, and copies a runtime", () => {
    const run = installCni();
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(readdirSync(confDir), ["10-test.conflist"]);
    const list = readNetworkList(join(confDir, "10-test.conflist"));
    assert.equal(list.name, "install-cni-test");
    assert.deepEqual(list.plugins.map((p) => p.type), ["ptp", "palisade"]);
    assert.equal(list.plugins[1]?.pinRoot, pinRoot);
    assert.equal(statSync(join(binDir, "palisade")).mode & 0o777, 0o755);
    const wrapper = readFileSync(join(binDir, "palisade"), "utf8");
    assert.ok(wrapper.includes(join(libDir, "runtime", "node")), wrapper);
    assert.ok(!wrapper.includes(process.execPath), "the wrapper runs the copy, not this installation");
    assert.ok(existsSync(join(libDir, "runtime", "native", "out", "palisade_native.node")));
  });

  test("the copied plugin answers VERSION with a bare environment", () => {
    const run = spawnSync(join(binDir, "palisade"), [], { env: { CNI_COMMAND: "VERSION" }, encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { cniVersion: "1.0.0", supportedVersions: ["1.0.0"] });
  });

  test("running again changes nothing", () => {
    const before = readFileSync(join(confDir, "10-test.conflist"), "utf8");
    const run = installCni();
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /already chains the palisade plugin/);
    assert.equal(readFileSync(join(confDir, "10-test.conflist"), "utf8"), before);
  });

  test("a runtime running the chain gets the agent's programs on the pod's host interface", async () => {
    const { hostInterface, ips } = await cniAdd(network, sandbox);
    assert.match(ips[0] ?? "", /^10\.251\.0\.\d+$/);
    assert.ok(pinnedLinksLive(pinRoot, ifNameToIndex(hostInterface)), `programs on ${hostInterface}`);
    await cniDel(network, sandbox);
  });

  test("with --watch it chains the plugin again when the network plugin rewrites its configuration", async () => {
    const watcher = spawn(process.execPath, [MAIN, "install-cni", "--conf-dir", confDir, "--bin-dir", binDir, "--lib-dir", libDir, "--pin-root", pinRoot, "--watch"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    watcher.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => watcher.once("exit", resolve));
    try {
      await eventually("installed", () => stderr.includes("already chains the palisade plugin"));
      const file = join(confDir, "10-test.conflist");
      const list = readNetworkList(file);
      writeFileSync(file, JSON.stringify({ ...list, plugins: list.plugins.filter((p) => p.type !== "palisade") }));
      await eventually("chained again", () => readNetworkList(file).plugins.some((p) => p.type === "palisade"), { timeoutMs: 10_000 });
      assert.match(stderr, /chained the palisade plugin in .*10-test\.conflist again/);
    } finally {
      watcher.kill("SIGTERM");
    }
    assert.equal(await exited, 0, stderr);
  });

  test("--uninstall takes the entry, the executable and the runtime copy out again", () => {
    const run = installCni("--uninstall");
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(readNetworkList(join(confDir, "10-test.conflist")).plugins.map((p) => p.type), ["ptp"]);
    assert.equal(existsSync(join(binDir, "palisade")), false);
    assert.equal(existsSync(join(libDir, "runtime")), false);
  });

  test("without a network configuration it waits, then fails naming the folder", () => {
    const empty = join(root, "empty");
    const run = spawnSync(process.execPath, [MAIN, "install-cni", "--conf-dir", empty, "--bin-dir", binDir, "--pin-root", pinRoot, "--timeout", "1s"], { encoding: "utf8" });
    assert.equal(run.status, 1);
    assert.match(run.stderr, new RegExp(`no network configuration in "${empty}" yet`));
  });
});
