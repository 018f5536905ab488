/**
 * The dev cluster as a user drives it, end to end with real packets: `dev
 * up --nodes 2` (control plane, node runtimes, operator, agents) in a
 * temporary dev folder on free ports and a network slot of its own, pods on both
 * nodes, the path between them (a cross-node packet is forwarded by both
 * node namespaces, a same-node one by its node only: the hops that answer a
 * short TTL say so), `probe matrix` (all allowed), an ingress
 * EBPFNetworkPolicy enforced on the receiver's node and an egress
 * NetworkPolicy on the sender's node for cross-node traffic (each node's
 * agent metrics, read at its node address, show where the drops happened),
 * `wait --for=programmed`, `kubectl get ebpfnps` showing 2/2, the policies
 * deleted and everything allowed again, and `dev down` leaving no process,
 * namespace, bridge or pin. Needs root and the cached control plane
 * binaries.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { agentMetricsUrl, devNodeSpec, type DevNetwork } from "../../src/devcluster/index.ts";
import { DevCli } from "../lib/dev-cli.ts";
import { alive } from "../lib/processes.ts";
import { testFolder } from "../lib/test-folder.ts";

const cluster = new DevCli(testFolder("e2e"));
const base = cluster.folder.root;
const dir = cluster.folder.layout.dir;
const tag = `pl-e2e-${Math.random().toString(16).slice(2, 8)}`;
let network: DevNetwork;
let pidsAtUp: number[] = [];
let sandboxes: string[] = [];
const ok = (...args: string[]): string => cluster.ok(...args);
const kube = (...args: string[]): string => cluster.kube(...args);

function pidsIn(runDir: string): number[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir).filter((f) => f.endsWith(".pid")).map((f) => Number(readFileSync(join(runDir, f), "utf8").trim()));
}

function netnsList(): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((line) => line.split(" ")[0] ?? "").filter((name) => name !== "");
}

interface Matrix {
  port: number;
  protocol: string;
  pairs: { from: string; to: string; allowed: boolean; reason: string }[];
}

function matrix(): Map<string, boolean> {
  const parsed = JSON.parse(ok("probe", "matrix", "--namespaces", `${tag}-x,${tag}-y`, "--port", "80", "--protocol", "TCP", "-o", "json")) as Matrix;
  assert.equal(parsed.port, 80);
  return new Map(parsed.pairs.map((pair) => [`${pair.from} ${pair.to}`, pair.allowed]));
}

/** Packets node `index`'s agent counted as dropped by policy (a deny rule or isolation), from its metrics at the node's address. */
async function policyDrops(index: number): Promise<number> {
  const text = await (await fetch(`${agentMetricsUrl(devNodeSpec(network, index))}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => /^palisade_verdicts_total\{reason="(policy|default)-deny"\} /.test(l))
    .reduce((sum, l) => sum + Number(l.split(" ")[1]), 0);
}

/** Pings `ip` once from `netns` with TTL (hop limit) `ttl`: the address that answered, and whether it was the target. */
function hop(netns: string, ip: string, ttl: number): { from: string; reached: boolean } {
  const run = spawnSync("ip", ["netns", "exec", netns, "ping", ip.includes(":") ? "-6" : "-4", "-n", "-c", "1", "-W", "2", "-t", String(ttl), ip], { encoding: "utf8" });
  const reply = /^\d+ bytes from ([0-9a-f.:]+): /m.exec(run.stdout);
  if (reply) return { from: reply[1] as string, reached: true };
  const exceeded = /^From ([0-9a-f.:]+) icmp_seq=1 Time (?:to live exceeded|exceeded: Hop limit)/m.exec(run.stdout);
  assert.ok(exceeded, `ping -t ${ttl} ${ip} from ${netns}: neither a reply nor time exceeded:\n${run.stdout}${run.stderr}`);
  return { from: exceeded[1] as string, reached: false };
}

/** The hops from `netns` to `ip`, up to the target (traceroute with ping). */
function path(netns: string, ip: string): string[] {
  const hops: string[] = [];
  for (let ttl = 1; ttl <= 4; ttl++) {
    const answer = hop(netns, ip, ttl);
    hops.push(answer.from);
    if (answer.reached) return hops;
  }
  assert.fail(`${ip} not reached from ${netns} in 4 hops: ${hops.join(" ")}`);
}

interface PodInfo {
  netns: string;
  ips: string[];
}

const podInfo = (ns: string, name: string): PodInfo => cluster.pod(ns, name);

const x = `${tag}-x`;
const y = `${tag}-y`;
const pods = [`${x}/a`, `${x}/b`, `${y}/c`];

before(() => {
  cluster.up(2);
  pidsAtUp = pidsIn(join(dir, "run"));
  network = cluster.network();
});

after(() => cluster.folder.remove());

test("pods on both nodes reach each other before any policy", () => {
  assert.equal(pidsAtUp.length, 2 /* agents */ + 2 /* proxies */ + 1 /* operator */ + 2 /* node runtimes */ + 4 /* control plane */);
  const netnsBefore = new Set(netnsList());
  const placement: [string, string, number][] = [[x, "a", 1], [x, "b", 2], [y, "c", 1]];
  for (const [ns, name, node] of placement) cluster.runPod(ns, name, node, [80]);
  sandboxes = netnsList().filter((name) => !netnsBefore.has(name) && name.startsWith(`pal${network.slot}-`));
  assert.equal(sandboxes.length, 3, "each pod has its network namespace");
  ok("wait", "--for=programmed", "--timeout", "60s");

  const before = matrix();
  assert.equal(before.size, 6);
  assert.ok([...before.values()].every(Boolean), `not all allowed before the policy: ${JSON.stringify([...before])}`);
});

test("a cross-node packet is forwarded by both node namespaces, a same-node one by its node only", () => {
  const [a, b, c] = [podInfo(x, "a"), podInfo(x, "b"), podInfo(y, "c")];
  const [one, two] = [devNodeSpec(network, 1), devNodeSpec(network, 2)];
  // A node's pods' gateway: the first address of its pod CIDR, on each pod's host-side veth.
  const gateway = (cidr: string): string => cidr.replace(/\.0\/24$/, ".1").replace(/::\/64$/, "::1");
  // Hop 1 is node 1 (its pods' gateway address), hop 2 node 2 (its InternalIP on the bridge), then the pod.
  assert.deepEqual(path(a.netns, b.ips[0] as string), [gateway(one.podCIDRs[0]), two.internalIPs[0], b.ips[0]]);
  assert.deepEqual(path(a.netns, b.ips[1] as string), [gateway(one.podCIDRs[1]), two.internalIPs[1], b.ips[1]]);
  assert.deepEqual(path(a.netns, c.ips[0] as string), [gateway(one.podCIDRs[0]), c.ips[0]]);
  assert.deepEqual(path(b.netns, a.ips[0] as string), [gateway(two.podCIDRs[0]), one.internalIPs[0], a.ips[0]]);
});

test("each node's agent serves its probes on the node's address", async () => {
  for (const index of [1, 2]) {
    assert.equal((await fetch(`${agentMetricsUrl(devNodeSpec(network, index))}/readyz`)).status, 200, `agent of node ${index}`);
  }
});

test("cross-node traffic meets ingress policy on the receiver's node and egress policy on the sender's", async () => {
  const policy = join(base, "policy.yaml");
  writeFileSync(policy, JSON.stringify({
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: "b-from-a", namespace: x },
    spec: { selector: { matchLabels: { app: "b" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }], ports: [{ protocol: "TCP", port: 80 }] }] },
  }));
  kube("apply", "-f", policy);
  ok("wait", "--for=programmed", "--timeout", "60s");
  let drops = [await policyDrops(1), await policyDrops(2)];
  const during = matrix();
  for (const from of pods) {
    for (const to of pods) {
      if (from === to) continue;
      const expected = to !== `${x}/b` || from === `${x}/a`;
      assert.equal(during.get(`${from} ${to}`), expected, `${from} -> ${to}`);
    }
  }
  // c (node 1) -> b (node 2) was dropped on arrival at node 2, where b's ingress policy is.
  assert.equal(await policyDrops(1), drops[0], "node 1 dropped nothing");
  assert.ok((await policyDrops(2)) > (drops[1] as number), "node 2 dropped c's packets to b");
  assert.match(kube("get", "ebpfnps", "-n", x), /b-from-a\s+1\s+2\/2\s+True/);
  assert.deepEqual(JSON.parse(ok("probe", "--from", `${y}/c`, "--to", `${x}/b`, "--port", "80", "-o", "json")), { allowed: false });
  assert.match(ok("status"), /EBPFNetworkPolicy\s+\S+\s+b-from-a\s+1\s+True\s+True\s+2\/2/);
  kube("delete", "-f", policy);

  // c (node 1) may only open connections to x/a (same node): its packets to b (node 2) die on node 1.
  const egress = join(base, "egress.yaml");
  writeFileSync(egress, JSON.stringify({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "c-to-a-only", namespace: y },
    spec: {
      podSelector: { matchLabels: { app: "c" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": x } }, podSelector: { matchLabels: { app: "a" } } }], ports: [{ protocol: "TCP", port: 80 }] }],
    },
  }));
  kube("apply", "-f", egress);
  ok("wait", "--for=programmed", "--timeout", "60s");
  drops = [await policyDrops(1), await policyDrops(2)];
  const egressMatrix = matrix();
  for (const from of pods) {
    for (const to of pods) {
      if (from !== to) assert.equal(egressMatrix.get(`${from} ${to}`), !(from === `${y}/c` && to === `${x}/b`), `${from} -> ${to}`);
    }
  }
  assert.ok((await policyDrops(1)) > (drops[0] as number), "node 1 dropped c's packets to b");
  assert.equal(await policyDrops(2), drops[1], "nothing of c's reached node 2 to be dropped there");
  kube("delete", "-f", egress);

  ok("wait", "--for=programmed", "--timeout", "60s");
  const afterDelete = matrix();
  assert.ok([...afterDelete.values()].every(Boolean), `not all allowed after deleting the policies: ${JSON.stringify([...afterDelete])}`);
});

test("dev down leaves no process, pod or node namespace, bridge or pin", () => {
  assert.equal(sandboxes.length, 3, "the first test saw the pods' network namespaces");
  ok("dev", "down");
  assert.deepEqual(pidsAtUp.filter(alive), []);
  assert.equal(existsSync(network.pinBase), false);
  assert.equal(existsSync(dir), false);
  assert.deepEqual(netnsList().filter((name) => sandboxes.includes(name) || name === devNodeSpec(network, 1).netns || name === devNodeSpec(network, 2).netns), []);
  assert.equal(spawnSync("ip", ["link", "show", "dev", network.bridge]).status, 1, "the bridge is gone");
});
