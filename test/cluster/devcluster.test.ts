/**
 * The dev cluster end to end: `palisade dev up` in a temporary dev folder on
 * free ports (so it never meets a user's cluster), kubectl with the admin
 * kubeconfig, RBAC refusing an unprivileged user, `dev up` again finding
 * everything in place, `dev status`, and `dev down` leaving no process and
 * no state. Needs root and the cached control plane binaries.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import {
  COMPONENT_NAMES,
  DevPki,
  PORT_SETTINGS,
  apiserverUrl,
  binariesIn,
  binaryPaths,
  devLayout,
  httpsRequest,
  issueKubeconfig,
  readClusterState,
  stopControlPlane,
  type ControlPlaneBinaries,
} from "../../src/devcluster/index.ts";

const devCli = fileURLToPath(new URL("../../src/cli/dev.js", import.meta.url));
const dir = join(mkdtempSync(join(tmpdir(), "pl-dev-")), "dev");
const layout = devLayout(dir);
const env = {
  ...process.env,
  PALISADE_DEV_DIR: dir,
  // The agents this cluster starts pin under a root of their own, never a real dev cluster's.
  PALISADE_DEV_PIN_ROOT: `/sys/fs/bpf/pl-dev-${randomBytes(3).toString("hex")}`,
  ...Object.fromEntries(Object.values(PORT_SETTINGS).map((setting) => [setting.env, "0"])),
};
let binaries: ControlPlaneBinaries;
const seenPids = new Set<number>();

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `palisade dev <args>` in a child process, as a user runs it. */
function dev(...args: string[]): Run {
  const script = `import { runDev } from ${JSON.stringify(devCli)}; process.exitCode = await runDev(${JSON.stringify(args)});`;
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env, encoding: "utf8", timeout: 300_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function kubectl(kubeconfig: string, ...args: string[]): Run {
  const result = spawnSync(binaries.kubectl, ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function pids(): Map<string, number> {
  const found = new Map<string, number>();
  for (const name of COMPONENT_NAMES) {
    const file = join(layout.run, `${name}.pid`);
    if (existsSync(file)) found.set(name, Number(readFileSync(file, "utf8").trim()));
  }
  for (const pid of found.values()) seenPids.add(pid);
  return found;
}

function alive(pid: number): boolean {
  try {
    // A zombie still answers kill(0); it has no executable any more.
    return existsSync(`/proc/${pid}/exe`) && readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

describe("palisade dev", { timeout: 600_000 }, () => {
  let upStdout = "";

  before(() => {
    const up = dev("up", "--nodes", "2");
    upStdout = up.stdout;
    const state = readClusterState(layout);
    if (state) binaries = binariesIn(state.binariesDir);
    pids();
    assert.equal(up.status, 0, `dev up failed:\n${up.stderr}`);
  });

  after(async () => {
    // Whatever the tests did or failed to do: nothing of this cluster survives.
    const state = existsSync(layout.stateFile) ? readClusterState(layout) : undefined;
    if (state) await stopControlPlane(layout, binaryPaths(state.binariesDir));
    for (const pid of seenPids) {
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
    rmSync(join(dir, ".."), { recursive: true, force: true });
  });

  test("up prints only the shell exports, naming the admin kubeconfig and the binaries", () => {
    assert.equal(upStdout, `export KUBECONFIG=${layout.adminKubeconfig}\nexport PATH=${binaries.dir}:$PATH\n`);
  });

  test("kubectl with the admin kubeconfig lists the registered nodes, Ready, with their pod CIDRs", () => {
    const run = kubectl(layout.adminKubeconfig, "get", "nodes", "-o", "json");
    assert.equal(run.status, 0, run.stderr);
    const nodes = (JSON.parse(run.stdout) as { items: { metadata: { name: string }; spec: { podCIDRs: string[] }; status: { conditions: { type: string; status: string }[] } }[] }).items;
    assert.deepEqual(nodes.map((n) => n.metadata.name).sort(), ["palisade-node-1", "palisade-node-2"]);
    for (const node of nodes) {
      const i = node.metadata.name.at(-1);
      assert.deepEqual(node.spec.podCIDRs, [`10.244.${i}.0/24`, `fd00:10:244:${i}::/64`]);
      assert.ok(node.status.conditions.some((c) => c.type === "Ready" && c.status === "True"), `${node.metadata.name} is not Ready`);
    }
  });

  test("RBAC is enforced: an unprivileged user's certificate is authenticated but may not list secrets", async () => {
    const state = readClusterState(layout);
    assert.ok(state);
    const pki = DevPki.ensure(layout.pki);
    const { path, client } = issueKubeconfig(layout, pki, state, "pl-test-nobody", "pl-test-nobody", ["pl-test-group"]);
    const denied = kubectl(path, "get", "secrets", "-n", "kube-system");
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /Forbidden.*User "pl-test-nobody" cannot list resource "secrets"/s);
    const url = `${apiserverUrl(state)}/api/v1/namespaces/kube-system/secrets`;
    assert.equal((await httpsRequest(url, { caCertFile: pki.caCertFile, client })).status, 403);
    assert.equal((await httpsRequest(url, { caCertFile: pki.caCertFile })).status, 403, "anonymous");
    assert.equal(kubectl(layout.adminKubeconfig, "get", "secrets", "-n", "kube-system").status, 0, "the admin may");
  });

  test("up again keeps the running processes and ports, and reconciles the node count", () => {
    const before = pids();
    const kubeconfig = readFileSync(layout.adminKubeconfig, "utf8");
    const again = dev("up", "--nodes", "1");
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(pids(), before);
    assert.equal(readFileSync(layout.adminKubeconfig, "utf8"), kubeconfig);
    const nodes = kubectl(layout.adminKubeconfig, "get", "nodes", "-o", "name");
    assert.equal(nodes.stdout.trim(), "node/palisade-node-1");
  });

  test("status shows every component running and healthy with its pid, and the nodes", () => {
    const status = dev("status");
    assert.equal(status.status, 0, status.stdout + status.stderr);
    for (const [name, pid] of pids()) {
      assert.match(status.stdout, new RegExp(`^${name}\\s+running\\s+${pid}\\s+yes$`, "m"));
    }
    assert.match(status.stdout, /^palisade-node-1\s+True\s+10\.240\.0\.1,fd00:10:240::1\s+10\.244\.1\.0\/24,fd00:10:244:1::\/64$/m);
  });

  test("status reports a stopped component as unhealthy", async () => {
    const scheduler = pids().get("kube-scheduler");
    assert.ok(scheduler);
    process.kill(scheduler, "SIGKILL");
    while (alive(scheduler)) await new Promise((resolve) => setTimeout(resolve, 50));
    const status = dev("status");
    assert.equal(status.status, 1);
    assert.match(status.stdout, /^kube-scheduler\s+stopped\s+-\s+no$/m);
    const healed = dev("up");
    assert.equal(healed.status, 0, healed.stderr);
    assert.equal(dev("status").status, 0);
  });

  test("down stops every process and removes all state; status then finds no cluster", () => {
    const running = [...pids().values()];
    assert.equal(running.length, COMPONENT_NAMES.length);
    const down = dev("down");
    assert.equal(down.status, 0, down.stderr);
    for (const pid of running) assert.ok(!alive(pid), `pid ${pid} still runs`);
    assert.ok(!existsSync(dir), `${dir} still exists`);
    assert.ok(existsSync(binaries.kubectl), "the binary cache stays");
    const status = dev("status");
    assert.equal(status.status, 1);
    assert.match(status.stdout, /^No dev cluster in /);
  });
});
