/**
 * The dev cluster end to end: `palisade dev up` in a temporary dev folder on
 * free ports, kubectl with the admin kubeconfig (from the host and from a
 * node's namespace), each node a network namespace on the cluster bridge
 * with its node runtime, agent and proxy inside, RBAC refusing an unprivileged user,
 * `dev up` again finding everything in place and adding or removing nodes
 * with their routes, `dev status` (and `dev up` healing what died), and
 * `dev down` (twice) leaving no process, network or state. The cluster takes
 * a network slot of its own, so it runs beside any other (see
 * dev-lifecycle.test.ts). Needs root and the cached control plane binaries.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Kubeconfig } from "../../src/k8s/kubeconfig.ts";
import {
  COMPONENT_NAMES,
  DevPki,
  apiserverUrl,
  binariesIn,
  devNetwork,
  devNodeSpec,
  httpsRequest,
  issueKubeconfig,
  networkOwner,
  nodeNetnsIndex,
  readClusterState,
  type ControlPlaneBinaries,
  type DevNetwork,
} from "../../src/devcluster/index.ts";
import { DevCli, type CommandRun } from "../lib/dev-cli.ts";
import { testFolder } from "../lib/test-folder.ts";
import { alive } from "../lib/processes.ts";

const cluster = new DevCli(testFolder("dev"));
const { layout } = cluster.folder;
const dir = layout.dir;
let binaries: ControlPlaneBinaries;
let network: DevNetwork;

/** `palisade dev ARGS`, as a user runs it. */
function dev(...args: string[]): CommandRun {
  return cluster.palisade("dev", ...args);
}

function kubectl(kubeconfig: string, ...args: string[]): CommandRun {
  const result = spawnSync(binaries.kubectl, ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function pids(): Map<string, number> {
  const found = new Map<string, number>();
  for (const name of COMPONENT_NAMES) {
    const file = join(layout.run, `${name}.pid`);
    if (existsSync(file)) found.set(name, Number(readFileSync(file, "utf8").trim()));
  }
  return found;
}

/** `ip -j ARGS` in the host namespace, or in `netns`. */
function ipJson<T>(netns: string | undefined, ...args: string[]): T {
  return JSON.parse(execFileSync("ip", [...(netns ? ["-n", netns] : []), "-j", ...args], { encoding: "utf8" })) as T;
}

/** `dst via gateway` of every route through a gateway on `device` (IPv4 and IPv6), sorted. */
function gatewayRoutes(netns: string | undefined, device: string): string[] {
  return ["-4", "-6"]
    .flatMap((family) => ipJson<{ dst: string; gateway?: string }[]>(netns, family, "route", "show", "dev", device))
    .filter((route) => route.gateway !== undefined)
    .map((route) => `${route.dst} via ${route.gateway}`)
    .sort();
}

function nodeNamespaces(): string[] {
  return existsSync("/var/run/netns") ? readdirSync("/var/run/netns").filter((name) => nodeNetnsIndex(network, name) !== undefined).sort() : [];
}

/** Whether `pid` runs in the named network namespace `netns`. */
function runsIn(pid: number, netns: string): boolean {
  return statSync(`/proc/${pid}/ns/net`).ino === statSync(`/var/run/netns/${netns}`).ino;
}

function nodePids(kind: "agent" | "proxy" | "node-runtime", node: string): number {
  return Number(readFileSync(join(layout.run, `${kind}-${node}.pid`), "utf8").trim());
}

/** Checks what a dev cluster of `count` nodes has on the network. */
function assertNodeNetwork(count: number): void {
  const nodes = Array.from({ length: count }, (_, i) => devNodeSpec(network, i + 1));
  assert.deepEqual(nodeNamespaces(), nodes.map((n) => n.netns).sort());
  const podRoutes = (specs: typeof nodes) => specs.flatMap((n) => n.podCIDRs.map((cidr, f) => `${cidr} via ${n.internalIPs[f]}`)).sort();
  assert.deepEqual(gatewayRoutes(undefined, network.bridge), podRoutes(nodes), "the host routes every node's pods via the node");
  for (const node of nodes) {
    const addresses = ipJson<{ addr_info: { local: string; scope: string; tentative?: boolean }[] }[]>(node.netns, "addr", "show", "dev", "eth0")[0]?.addr_info ?? [];
    const global = addresses.filter((a) => a.scope === "global");
    assert.deepEqual(global.map((a) => a.local), node.internalIPs, `${node.name}'s eth0 holds its InternalIPs`);
    assert.ok(addresses.every((a) => a.tentative !== true), `no tentative address on ${node.name}'s eth0`);
    assert.deepEqual(gatewayRoutes(node.netns, "eth0"), [
      ...podRoutes(nodes.filter((other) => other.name !== node.name)),
      `default via ${network.bridgeAddresses[0]}`,
      `default via ${network.bridgeAddresses[1]}`,
    ].sort(), `${node.name} routes the other nodes' pods via them`);
    for (const key of ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]) {
      assert.equal(execFileSync("ip", ["netns", "exec", node.netns, "sysctl", "-n", key], { encoding: "utf8" }).trim(), "1", `${key} in ${node.netns}`);
    }
    for (const kind of ["agent", "proxy", "node-runtime"] as const) {
      assert.ok(runsIn(nodePids(kind, node.name), node.netns), `the ${kind} of ${node.name} runs in its namespace`);
    }
  }
}

describe("palisade dev", { timeout: 600_000 }, () => {
  let upStdout = "";

  before(() => {
    const up = dev("up", "--nodes", "2");
    upStdout = up.stdout;
    assert.equal(up.status, 0, `dev up failed:\n${up.stderr}`);
    const state = readClusterState(layout);
    assert.ok(state?.networkSlot !== undefined, "the cluster recorded its network slot");
    binaries = binariesIn(state.binariesDir);
    network = devNetwork(state.networkSlot);
  });

  // Whatever the tests did or failed to do: nothing of this cluster survives.
  after(() => cluster.folder.remove());

  test("up prints only the shell exports, naming the admin kubeconfig and the binaries", () => {
    assert.equal(upStdout, `export KUBECONFIG=${layout.adminKubeconfig}\nexport PATH=${binaries.dir}:$PATH\n`);
  });

  test("a folder other than the default one takes a network slot from 1 on, never the README's slot 0", () => {
    assert.notEqual(network.slot, 0);
  });

  test("the API server listens on the bridge address, which every kubeconfig names; it answers from the host and from a node", () => {
    const state = readClusterState(layout);
    assert.ok(state);
    assert.equal(state.apiserverAddress, network.bridgeAddresses[0]);
    const server = `https://${network.bridgeAddresses[0]}:${state.ports.apiserver}`;
    for (const file of [layout.adminKubeconfig, ...readdirSync(layout.kubeconfigs).map((f) => join(layout.kubeconfigs, f))]) {
      assert.equal(Kubeconfig.fromFile(file).server, server, file);
    }
    const fromNode = spawnSync("ip", ["netns", "exec", devNodeSpec(network, 2).netns, binaries.kubectl, "--kubeconfig", layout.adminKubeconfig, "get", "nodes", "-o", "name"], { encoding: "utf8" });
    assert.equal(fromNode.status, 0, fromNode.stderr);
    assert.equal(fromNode.stdout, "node/palisade-node-1\nnode/palisade-node-2\n");
  });

  test("each node is a network namespace on the bridge with its InternalIPs, forwarding, routes to the others, and its runtime and agent inside", () => {
    assert.equal(networkOwner(network), dir);
    assertNodeNetwork(2);
  });

  test("kubectl with the admin kubeconfig lists the registered nodes, Ready, with their pod CIDRs", () => {
    const run = kubectl(layout.adminKubeconfig, "get", "nodes", "-o", "json");
    assert.equal(run.status, 0, run.stderr);
    const nodes = (JSON.parse(run.stdout) as { items: { metadata: { name: string }; spec: { podCIDRs: string[] }; status: { conditions: { type: string; status: string }[] } }[] }).items;
    assert.deepEqual(nodes.map((n) => n.metadata.name).sort(), ["palisade-node-1", "palisade-node-2"]);
    for (const node of nodes) {
      const i = Number(node.metadata.name.at(-1));
      assert.deepEqual(node.spec.podCIDRs, devNodeSpec(network, i).podCIDRs);
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

  test("up again keeps the running processes and ports, and adds or removes nodes with their namespaces and routes", () => {
    const before = pids();
    const agent1 = nodePids("agent", "palisade-node-1");
    const proxy1 = nodePids("proxy", "palisade-node-1");
    const kubeconfig = readFileSync(layout.adminKubeconfig, "utf8");
    const three = dev("up", "--nodes", "3");
    assert.equal(three.status, 0, three.stderr);
    assertNodeNetwork(3);
    const one = dev("up", "--nodes", "1");
    assert.equal(one.status, 0, one.stderr);
    assertNodeNetwork(1);
    assert.ok(!existsSync(join(layout.run, "agent-palisade-node-2.pid")), "the removed nodes' agents are stopped");
    assert.ok(!existsSync(join(layout.run, "proxy-palisade-node-2.pid")), "the removed nodes' proxies are stopped");
    assert.deepEqual(pids(), before);
    assert.equal(nodePids("agent", "palisade-node-1"), agent1, "node 1's agent kept running");
    assert.equal(nodePids("proxy", "palisade-node-1"), proxy1, "node 1's proxy kept running");
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
    const agent = nodePids("agent", "palisade-node-1");
    const proxy = nodePids("proxy", "palisade-node-1");
    const runtime = nodePids("node-runtime", "palisade-node-1");
    const node = devNodeSpec(network, 1);
    const quoted = (text: string): string => text.replace(/[.]/g, "\\.");
    assert.match(
      status.stdout,
      new RegExp(
        `^palisade-node-1\\s+True\\s+${quoted(node.internalIPs.join(","))}\\s+${quoted(node.podCIDRs.join(","))}\\s+${node.netns}\\s+pid ${runtime}\\s+pid ${agent} healthy http://${quoted(node.internalIPs[0])}:9962\\s+pid ${proxy} healthy http://${quoted(node.internalIPs[0])}:9963$`,
        "m",
      ),
    );
  });

  test("status reports whatever died, dev up restarts it all, an API server still shutting down included", async () => {
    const scheduler = pids().get("kube-scheduler");
    const apiserver = pids().get("kube-apiserver");
    const agent = nodePids("agent", "palisade-node-1");
    const runtime = nodePids("node-runtime", "palisade-node-1");
    const operator = Number(readFileSync(join(layout.run, "operator.pid"), "utf8").trim());
    assert.ok(scheduler && apiserver);
    for (const pid of [scheduler, agent, runtime, operator]) process.kill(pid, "SIGKILL");
    for (const pid of [scheduler, agent, runtime, operator]) while (alive(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
    const status = dev("status");
    assert.equal(status.status, 1);
    assert.match(status.stdout, /^kube-scheduler\s+stopped\s+-\s+no$/m);
    assert.match(status.stdout, /^operator\s+stopped\s+-\s+no$/m);
    const proxy = nodePids("proxy", "palisade-node-1");
    assert.match(status.stdout, new RegExp(`^palisade-node-1\\s.*\\sstopped\\s+stopped\\s+pid ${proxy} healthy \\S+$`, "m"), "the node's runtime and agent show as stopped, its proxy runs on");
    // SIGTERM: the API server drains its watches for a while, still running when dev up looks, then exits.
    process.kill(apiserver, "SIGTERM");
    const healed = dev("up");
    assert.equal(healed.status, 0, healed.stderr);
    const after = dev("status");
    assert.equal(after.status, 0, after.stdout);
    assert.notEqual(pids().get("kube-apiserver"), apiserver, "a new API server runs");
    assert.equal(nodePids("proxy", "palisade-node-1"), proxy, "restarting the agent left the proxy alone");
  });

  test("down stops every process and removes the network and all state, twice over; status then finds no cluster", () => {
    const running = [...pids().values(), nodePids("agent", "palisade-node-1"), nodePids("proxy", "palisade-node-1"), nodePids("node-runtime", "palisade-node-1")];
    assert.equal(running.length, COMPONENT_NAMES.length + 3);
    const down = dev("down");
    assert.equal(down.status, 0, down.stderr);
    for (const pid of running) assert.ok(!alive(pid), `pid ${pid} still runs`);
    assert.ok(!existsSync(dir), `${dir} still exists`);
    assert.equal(networkOwner(network), undefined, "the bridge is gone");
    assert.deepEqual(nodeNamespaces(), []);
    assert.equal(spawnSync("ip", ["link", "show", "dev", devNodeSpec(network, 1).uplink]).status, 1, "the uplink is gone");
    const again = dev("down");
    assert.equal(again.status, 0, again.stderr);
    assert.ok(existsSync(binaries.kubectl), "the binary cache stays");
    const status = dev("status");
    assert.equal(status.status, 1);
    assert.match(status.stdout, /^No dev cluster in /);
  });
});
