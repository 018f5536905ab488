/**
 * The stand-in node runtime against a real dev cluster, running as `dev up`
 * runs it: detached, inside node 1's network namespace. A Pod bound
 * to that node becomes a network namespace wired by Debian's ptp and
 * host-local plugins (its host-side veth in the node's namespace, not the
 * host's), Running with an IPv4 and an IPv6 address, echoing TCP and UDP and
 * answering SCTP INITs on its declared ports (from the host, through the node, and from another
 * pod); a pod without ports gets its sandbox once and keeps its address; a
 * pod server that dies is started again in its sandbox, which keeps its
 * addresses; its deletion removes the namespace, the IPAM leases and the Pod
 * object; a restarted runtime adopts live sandboxes and removes orphaned
 * ones; once `palisade install-cni` chains Palisade's plugin, a new pod waits
 * for the agent's programs and runs with them. Needs root and the cached
 * control plane binaries.
 */
import type { V1Pod } from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CONTROL_PLANE_STEPS, devNetwork, devNodeSpec, devUp, freePorts, readClusterState, startNodeRuntime, stopNodeRuntime, type DevNetwork, type DevNodeSpec } from "../../src/devcluster/index.ts";
import { listSandboxes, nodeNetwork, sctpRawBinary } from "../../src/devcluster/node-runtime/index.ts";
import { KubeClient, resourcePath, Resources } from "../../src/k8s/index.ts";
import { eventually } from "../lib/eventually.ts";
import { uniquePinRoot } from "../lib/kernel.ts";
import { Datapath, pinnedLinksLive } from "../../src/datapath/datapath.ts";
import { installCni } from "../../src/cni/install.ts";
import { testFolder } from "../lib/test-folder.ts";
import { PROBER_PATH, SANDBOX_NETNS_ANNOTATION } from "../../src/probe/index.ts";

const folder = testFolder("nrt");
const { layout } = folder;
const NODE = "palisade-node-1";
let network: DevNetwork;
let node: DevNodeSpec;
// Where `startNodeRuntime` keeps the runtime's state and log.
const stateDir = join(layout.dir, "node-runtime", NODE);
const runtimeLog = join(layout.logs, `node-runtime-${NODE}.log`);
let client: KubeClient;
let runtimePid: number | undefined;

/** Whether `ip`:`port` answers over `protocol` (the TCP handshake, a UDP echo, an SCTP INIT ACK), from the host (netns undefined) or from inside `netns`. */
function probe(netns: string | undefined, ip: string, port: number, protocol: "TCP" | "UDP" | "SCTP"): Promise<boolean> {
  const target = [ip, String(port), "2000"];
  const command = protocol === "SCTP" ? [sctpRawBinary(), "probe", ...target] : [process.execPath, PROBER_PATH, protocol, ...target];
  const [file, ...args] = netns === undefined ? command : ["ip", "netns", "exec", netns, ...command];
  return new Promise((resolve) => execFile(file as string, args, (error) => resolve(error === null)));
}

const SERVED_PORTS = [{ containerPort: 80, protocol: "TCP" }, { containerPort: 81, protocol: "UDP" }, { containerPort: 82, protocol: "SCTP" }];

function podObject(name: string, ports = SERVED_PORTS): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: { app: name } },
    spec: {
      nodeName: NODE,
      automountServiceAccountToken: false,
      containers: [{ name: "main", image: "palisade.dev/pod-server", ports }],
    },
  };
}

/** The network namespace the runtime recorded on `pod`. */
function netnsOf(pod: V1Pod | undefined): string {
  const netns = pod?.metadata?.annotations?.[SANDBOX_NETNS_ANNOTATION];
  assert.ok(netns, `pod ${pod?.metadata?.name} names its sandbox's network namespace`);
  return netns;
}

/** Lists then watches `path` (a collection) until `done` holds for the object named `name`, or until it is gone when `done` is "deleted". */
async function waitFor(path: string, name: string, done: ((obj: V1Pod) => boolean) | "deleted", timeoutMs = 60_000): Promise<V1Pod | undefined> {
  const signal = AbortSignal.timeout(timeoutMs);
  const fieldSelector = `metadata.name=${name}`;
  const list = await client.request<{ metadata: { resourceVersion: string }; items: V1Pod[] }>("GET", path, { query: { fieldSelector } });
  const current = list.items[0];
  if (done === "deleted" ? current === undefined : current !== undefined && done(current)) return current;
  let resourceVersion = list.metadata.resourceVersion;
  while (!signal.aborted) {
    for await (const event of client.watch<V1Pod>(path, { fieldSelector, resourceVersion }, { signal })) {
      resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion;
      if (done === "deleted" ? event.type === "DELETED" : event.type !== "DELETED" && event.type !== "BOOKMARK" && done(event.object)) return event.object;
    }
  }
  throw new Error(`Timed out waiting for ${path}/${name}`);
}

const podsPath = resourcePath(Resources.pods, { namespace: "default" });
const running = (pod: V1Pod): boolean => pod.status?.phase === "Running" && (pod.status.podIPs ?? []).length === 2;

async function createRunningPod(name: string, ports = SERVED_PORTS): Promise<V1Pod> {
  await client.request("POST", podsPath, { body: podObject(name, ports) });
  const pod = await waitFor(podsPath, name, running);
  assert.ok(pod);
  return pod;
}

function syncedRuns(): number {
  return existsSync(runtimeLog) ? readFileSync(runtimeLog, "utf8").split("\n").filter((line) => line.includes('"Node runtime synced"')).length : 0;
}

/** Starts the node runtime in its node's namespace and waits until it acted on the first list of Pods. */
async function startRuntime(): Promise<void> {
  const runs = syncedRuns();
  runtimePid = startNodeRuntime(layout, network, 1).pid;
  await eventually("the node runtime synced", () => syncedRuns() > runs, { timeoutMs: 60_000, context: () => readFileSync(runtimeLog, "utf8").slice(-2000) });
}

/** Stops the node runtime process only: its sandboxes stay, as when it crashes or is upgraded. */
async function killRuntime(): Promise<void> {
  const pid = runtimePid;
  assert.ok(pid !== undefined);
  process.kill(pid, "SIGTERM");
  await eventually("the node runtime exited", () => !existsSync(`/proc/${pid}/exe`) || readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] === "Z");
  runtimePid = undefined;
}

function netnsList(): string[] {
  return existsSync("/var/run/netns") ? readdirSync("/var/run/netns") : [];
}

function ipamLeases(): string[] {
  // host-local keeps a network's leases in <dataDir>/<network name>/.
  const dir = join(stateDir, "ipam", `palisade-${NODE}`);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^[0-9a-f.:]+$/.test(f) && f.includes(f.includes(":") ? ":" : ".")) : [];
}

describe("node runtime", { timeout: 600_000 }, () => {
  before(async () => {
    // Control plane, Nodes and their namespaces; only the node runtime of palisade-node-1 runs, no other Palisade component.
    await devUp(layout, { nodes: 2, ports: await freePorts() }, () => {}, CONTROL_PLANE_STEPS);
    network = devNetwork(readClusterState(layout)?.networkSlot as number);
    node = devNodeSpec(network, 1);
    client = KubeClient.fromFile(layout.adminKubeconfig);
    // The ServiceAccount admission plugin refuses pods until the controller-manager created the namespace's default account.
    await waitFor(resourcePath({ ...Resources.pods, plural: "serviceaccounts" }, { namespace: "default" }), "default", () => true);
    await startRuntime();
  });

  after(async () => {
    try {
      await stopNodeRuntime(layout, NODE, () => undefined);
    } finally {
      await folder.remove();
    }
  });

  test("a pod becomes Running and Ready with an IPv4 and an IPv6 address from the node's pod CIDRs", async () => {
    const pod = await createRunningPod("pl-a");
    const ips = (pod.status?.podIPs ?? []).map((p) => p.ip);
    assert.ok(ips[0]?.startsWith(node.podCIDRs[0].replace(/0\/24$/, "")), `${ips[0]} in ${node.podCIDRs[0]}`);
    assert.ok(ips[1]?.startsWith(node.podCIDRs[1].replace(/\/64$/, "")), `${ips[1]} in ${node.podCIDRs[1]}`);
    assert.equal(pod.status?.podIP, ips[0]);
    assert.equal(pod.status?.hostIP, node.internalIPs[0]);
    for (const type of ["PodScheduled", "Initialized", "ContainersReady", "Ready"]) {
      assert.equal(pod.status?.conditions?.find((c) => c.type === type)?.status, "True", type);
    }
    assert.equal(pod.status?.containerStatuses?.[0]?.ready, true);
    const netns = netnsOf(pod);
    assert.ok(netnsList().includes(netns));
    const inside = execFileSync("ip", ["-n", netns, "-o", "addr", "show", "dev", "eth0"], { encoding: "utf8" });
    for (const ip of ips) assert.ok(inside.includes(` ${ip}/`), `${ip} not on eth0 in ${netns}: ${inside}`);
    const hostInterface = listSandboxes({ stateDir, network: nodeNetwork(stateDir) }).find((r) => r.name === "pl-a")?.hostInterface ?? "";
    assert.match(hostInterface, /^veth/);
    assert.equal(spawnSync("ip", ["-n", node.netns, "link", "show", "dev", hostInterface]).status, 0, `${hostInterface} is in ${NODE}'s namespace`);
    assert.notEqual(spawnSync("ip", ["link", "show", "dev", hostInterface]).status, 0, `${hostInterface} is not in the host's namespace`);
  });

  test("the pod echoes TCP on 80 and UDP on 81 and answers SCTP on 82, from the host and from another pod, over both families", async () => {
    const a = await waitFor(podsPath, "pl-a", running);
    const b = await createRunningPod("pl-b");
    const bNetns = netnsOf(b);
    for (const ip of (a?.status?.podIPs ?? []).map((p) => p.ip)) {
      for (const [port, protocol] of [[80, "TCP"], [81, "UDP"], [82, "SCTP"]] as const) {
        assert.equal(await probe(undefined, ip, port, protocol), true, `host -> ${ip}:${port}/${protocol}`);
        assert.equal(await probe(bNetns, ip, port, protocol), true, `pl-b -> ${ip}:${port}/${protocol}`);
      }
      assert.equal(await probe(undefined, ip, 82, "TCP"), false, `host -> ${ip}:82/TCP is not declared`);
      assert.equal(await probe(undefined, ip, 80, "SCTP"), false, `host -> ${ip}:80/SCTP is not declared`);
    }
  });

  test("a pod without ports gets its sandbox once: Running, its server holding the sandbox, its address kept through later updates", async () => {
    const [pod] = await Promise.all([createRunningPod("pl-quiet", []), createRunningPod("pl-quiet-2", [])]);
    const record = listSandboxes({ stateDir, network: nodeNetwork(stateDir) }).find((r) => r.name === "pl-quiet");
    assert.ok(record);
    // Updates make the runtime look at the pod again; none may rebuild it.
    for (const value of ["one", "two", "three"]) {
      await client.request("PATCH", `${podsPath}/pl-quiet`, { body: { metadata: { labels: { round: value } } }, contentType: "application/merge-patch+json" });
      await waitFor(podsPath, "pl-quiet", (p) => p.metadata?.labels?.round === value);
    }
    const now = await waitFor(podsPath, "pl-quiet", running);
    assert.deepEqual(now?.status?.podIPs, pod.status?.podIPs, "the pod's addresses never changed");
    assert.equal(netnsOf(now), netnsOf(pod));
    const after = listSandboxes({ stateDir, network: nodeNetwork(stateDir) }).find((r) => r.name === "pl-quiet");
    assert.equal(after?.serverPid, record.serverPid, "the same server holds the sandbox");
    assert.ok(existsSync(`/proc/${record.serverPid}/exe`), "the server of a pod without ports keeps running");
    assert.doesNotMatch(readFileSync(runtimeLog, "utf8"), /rebuilding it|restarting it/, "no sandbox was rebuilt or restarted");
    for (const name of ["pl-quiet", "pl-quiet-2"]) {
      await client.request("DELETE", `${podsPath}/${name}`);
      await waitFor(podsPath, name, "deleted");
    }
  });

  test("a pod server that dies is started again in its sandbox, which keeps its namespace and addresses", async () => {
    const pod = await waitFor(podsPath, "pl-a", running);
    const record = listSandboxes({ stateDir, network: nodeNetwork(stateDir) }).find((r) => r.name === "pl-a");
    assert.ok(pod && record);
    process.kill(record.serverPid, "SIGKILL");
    await eventually("the runtime restarted the pod server", () => {
      const now = listSandboxes({ stateDir, network: nodeNetwork(stateDir) }).find((r) => r.name === "pl-a");
      return now !== undefined && now.serverPid !== record.serverPid && existsSync(`/proc/${now.serverPid}/exe`);
    }, { timeoutMs: 30_000, context: () => readFileSync(runtimeLog, "utf8").slice(-2000) });
    const now = await waitFor(podsPath, "pl-a", running);
    assert.deepEqual(now?.status?.podIPs, pod.status?.podIPs);
    assert.equal(netnsOf(now), netnsOf(pod));
    assert.match(readFileSync(runtimeLog, "utf8"), /Pod server not running, restarting it in its sandbox/);
    for (const ip of (now?.status?.podIPs ?? []).map((p) => p.ip)) assert.equal(await probe(undefined, ip, 80, "TCP"), true, `${ip}:80 answers again`);
  });

  test("a restarted runtime adopts running sandboxes and removes those whose pod is gone", async () => {
    await killRuntime();
    const before = listSandboxes({ stateDir, network: nodeNetwork(stateDir) });
    // While the runtime is down the pod goes away for good: nobody finished its deletion, so do it by force.
    await client.request("DELETE", `${podsPath}/pl-b`, { body: { kind: "DeleteOptions", apiVersion: "v1", gracePeriodSeconds: 0 } });
    await waitFor(podsPath, "pl-b", "deleted");
    await startRuntime();
    const after = listSandboxes({ stateDir, network: nodeNetwork(stateDir) });
    const a = before.find((r) => r.name === "pl-a");
    const b = before.find((r) => r.name === "pl-b");
    assert.ok(a && b);
    assert.deepEqual(after.map((r) => r.uid), [a.uid], "pl-a adopted as is, pl-b removed");
    assert.equal(after[0]?.serverPid, a.serverPid, "the adopted pod server was not restarted");
    assert.ok(!netnsList().includes(b.netns));
    assert.deepEqual(ipamLeases().sort(), [...a.ips].sort());
  });

  test("deleting the pod removes its namespace, releases its addresses and removes the Pod object", async () => {
    const pod = await waitFor(podsPath, "pl-a", running);
    const netns = netnsOf(pod);
    // A normal (graceful) delete: without the runtime the Pod would wait 30 s for a kubelet.
    await client.request("DELETE", `${podsPath}/pl-a`);
    await waitFor(podsPath, "pl-a", "deleted");
    assert.ok(!netnsList().includes(netns), `${netns} still exists`);
    assert.deepEqual(ipamLeases(), []);
    assert.deepEqual(listSandboxes({ stateDir, network: nodeNetwork(stateDir) }), []);
  });

  test("once install-cni chained the palisade plugin, a pod waits for the agent's programs and has them on its interface before it runs", async () => {
    const pinRoot = uniquePinRoot("nrt");
    // As the agent DaemonSet's init container does on a running node: the runtime reads the chain for every pod.
    const { confDir } = nodeNetwork(stateDir);
    await installCni({ confDir, binDir: join(stateDir, "cni-bin"), pinRoot });
    let datapath: Datapath | undefined;
    try {
      await client.request("POST", podsPath, { body: podObject("pl-c") });
      // No agent has pinned programs: the palisade CNI plugin says "try again later" and the pod does not run.
      await eventually("the CNI plugin refused the pod", () => readFileSync(runtimeLog, "utf8").includes("no agent has pinned its programs there yet"), { timeoutMs: 60_000 });
      const pending = await client.request<V1Pod>("GET", `${podsPath}/pl-c`);
      assert.notEqual(pending.status?.phase, "Running");

      datapath = Datapath.open({ pinRoot });
      const pod = await waitFor(podsPath, "pl-c", running);
      const record = listSandboxes({ stateDir, network: nodeNetwork(stateDir) }).find((r) => r.name === "pl-c");
      assert.ok(pod && record);
      const [link] = JSON.parse(execFileSync("ip", ["-n", node.netns, "-j", "link", "show", "dev", record.hostInterface], { encoding: "utf8" })) as { ifindex: number }[];
      assert.ok(link);
      assert.ok(pinnedLinksLive(pinRoot, link.ifindex), "both hooks of the pod's interface run the agent's programs");
      // No agent wrote the pod's endpoint entry: the program drops its traffic (fail closed).
      const ip = pod.status?.podIPs?.[0]?.ip ?? "";
      assert.equal(await probe(undefined, ip, 80, "TCP"), false, "traffic to a pod without an endpoint entry is dropped");
      await client.request("DELETE", `${podsPath}/pl-c`);
      await waitFor(podsPath, "pl-c", "deleted");
    } finally {
      datapath?.destroy();
    }
  });
});
