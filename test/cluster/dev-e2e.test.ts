/**
 * The dev cluster as a user drives it, end to end with real packets: `dev
 * up --nodes 2` (control plane, node runtimes, operator, agents) in a
 * temporary dev folder on free ports with its own pin root, pods on both
 * nodes, the path between them (a cross-node packet is forwarded by both
 * node namespaces, a same-node one by its node only: the hops that answer a
 * short TTL say so), `probe matrix` (all allowed), an ingress
 * EBPFNetworkPolicy enforced on the receiver's node and an egress
 * NetworkPolicy on the sender's node for cross-node traffic (each node's
 * agent metrics, read at its node address, show where the drops happened),
 * `wait --for=programmed`, `kubectl get ebpfnps` showing 2/2, the policies
 * deleted and everything allowed again, and `dev down` leaving no process,
 * namespace, bridge or pin. Needs root and the cached control plane
 * binaries; only one dev cluster with nodes runs per machine.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { agentMetricsUrl, devNodeSpec } from "../../src/devcluster/index.ts";
import { alive, temporaryDevCluster } from "../lib/dev-cluster.ts";

const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const { base, dir, tag, pinBase, env } = temporaryDevCluster("e2e");
let kubectl = "";
let pidsAtUp: number[] = [];
let sandboxes: string[] = [];

function palisade(...args: string[]): { status: number; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [cli, ...args], { env, encoding: "utf8", timeout: 180_000 });
  return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
}

function ok(...args: string[]): string {
  const run = palisade(...args);
  assert.equal(run.status, 0, `palisade ${args.join(" ")} failed:\n${run.stderr}`);
  return run.stdout;
}

function kube(...args: string[]): string {
  return execFileSync(kubectl, args, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function pidsIn(runDir: string): number[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir).filter((f) => f.endsWith(".pid")).map((f) => Number(readFileSync(join(runDir, f), "utf8").trim()));
}

/** Waits until the controller manager created the namespace's default ServiceAccount, which admitting a pod needs. */
function waitForDefaultServiceAccount(ns: string): void {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const run = spawnSync(kubectl, ["get", "serviceaccount", "default", "-n", ns], { env, encoding: "utf8" });
    if (run.status === 0) return;
    if (Date.now() > deadline) assert.fail(`namespace "${ns}" got no default ServiceAccount in 30 s: ${run.stderr}`);
    spawnSync("sleep", ["0.2"]);
  }
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
  const text = await (await fetch(`${agentMetricsUrl(devNodeSpec(index))}/metrics`)).text();
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

function podInfo(ns: string, name: string): PodInfo {
  const pod = JSON.parse(kube("get", "pod", name, "-n", ns, "-o", "json")) as { metadata: { uid: string }; spec: { nodeName: string }; status: { podIPs: { ip: string }[] } };
  return { netns: `pal-${pod.spec.nodeName.slice("palisade-node-".length)}-${pod.metadata.uid.slice(0, 8)}`, ips: pod.status.podIPs.map((p) => p.ip) };
}

const x = `${tag}-x`;
const y = `${tag}-y`;
const pods = [`${x}/a`, `${x}/b`, `${y}/c`];

before(() => {
  const up = palisade("dev", "up", "--nodes", "2");
  assert.equal(up.status, 0, `dev up failed:\n${up.stderr}`);
  const exports = Object.fromEntries([...up.stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], (m[2] ?? "").replace(/^'|'$/g, "")]));
  env.KUBECONFIG = exports.KUBECONFIG;
  kubectl = join((exports.PATH ?? "").split(":")[0] ?? "", "kubectl");
  pidsAtUp = pidsIn(join(dir, "run"));
});

after(() => {
  palisade("dev", "down");
  rmSync(pinBase, { recursive: true, force: true });
  rmSync(base, { recursive: true, force: true });
});

test("pods on both nodes reach each other before any policy", () => {
  assert.equal(pidsAtUp.length, 2 /* agents */ + 1 /* operator */ + 2 /* node runtimes */ + 4 /* control plane */);
  kube("create", "namespace", x);
  kube("create", "namespace", y);
  waitForDefaultServiceAccount(x);
  waitForDefaultServiceAccount(y);
  const netnsBefore = new Set(netnsList());
  const placement: [string, string, string][] = [[x, "a", "palisade-node-1"], [x, "b", "palisade-node-2"], [y, "c", "palisade-node-1"]];
  for (const [ns, name, node] of placement) {
    kube("run", name, "-n", ns, "--image=none", "--port=80", `--labels=app=${name}`, `--overrides={"spec":{"nodeName":"${node}"}}`);
  }
  for (const ns of [x, y]) kube("wait", "-n", ns, "--for=condition=Ready", "pod", "--all", "--timeout=60s");
  sandboxes = netnsList().filter((name) => !netnsBefore.has(name) && /^pal-\d+-/.test(name));
  assert.equal(sandboxes.length, 3, "each pod has its network namespace");
  ok("wait", "--for=programmed", "--timeout", "60s");

  const before = matrix();
  assert.equal(before.size, 6);
  assert.ok([...before.values()].every(Boolean), `not all allowed before the policy: ${JSON.stringify([...before])}`);
});

test("a cross-node packet is forwarded by both node namespaces, a same-node one by its node only", () => {
  const [a, b, c] = [podInfo(x, "a"), podInfo(x, "b"), podInfo(y, "c")];
  // Hop 1 is node 1 (its pods' gateway address), hop 2 node 2 (its InternalIP on the bridge), then the pod.
  assert.deepEqual(path(a.netns, b.ips[0] as string), ["10.244.1.1", "10.240.0.2", b.ips[0]]);
  assert.deepEqual(path(a.netns, b.ips[1] as string), ["fd00:10:244:1::1", "fd00:10:240::2", b.ips[1]]);
  assert.deepEqual(path(a.netns, c.ips[0] as string), ["10.244.1.1", c.ips[0]]);
  assert.deepEqual(path(b.netns, a.ips[0] as string), ["10.244.2.1", "10.240.0.1", a.ips[0]]);
});

test("each node's agent serves its probes on the node's address", async () => {
  for (const index of [1, 2]) {
    assert.equal((await fetch(`${agentMetricsUrl(devNodeSpec(index))}/readyz`)).status, 200, `agent of node ${index}`);
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
  assert.equal(existsSync(pinBase), false);
  assert.equal(existsSync(dir), false);
  assert.deepEqual(netnsList().filter((name) => sandboxes.includes(name) || /^palisade-node-\d+$/.test(name)), []);
  assert.equal(spawnSync("ip", ["link", "show", "dev", "palisade0"]).status, 1, "the bridge is gone");
});
