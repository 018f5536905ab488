/**
 * Cluster-wide security identities on a real control plane and kernel: two
 * agents for two Nodes (each with its own pinned maps, attached to its own
 * pods' interfaces on this host) and the operator, all in-process. Checks
 * that a key without a PalisadeIdentity is pending (not enforced as its
 * labels say, and not reported as caught up) until the operator creates
 * the object, that both agents use the same numbers, that numbers survive
 * an operator restart, that new keys take the lowest free number, that
 * unused identities are collected only after the grace period, and that a
 * policy's CIDRs are numbered by each node alone. Waits on
 * reports and objects, never on fixed sleeps.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Agent } from "../../src/agent/agent.ts";
import { readNodeReport, REPORT_NAMESPACE } from "../../src/k8s/node-report.ts";
import type { NodeReport } from "../../src/k8s/node-report.ts";
import type { KubeClient } from "../../src/k8s/client.ts";
import { PatchType } from "../../src/k8s/client.ts";
import { isAlreadyExists } from "../../src/k8s/errors.ts";
import { jsonLogger, LOG_LEVELS } from "../../src/k8s/logger.ts";
import { resourcePath, Resources } from "../../src/k8s/resource.ts";
import { runOperator } from "../../src/operator/operator.ts";
import type { RunningOperator } from "../../src/operator/operator.ts";
import type { PalisadeIdentity } from "../../src/policy/api-types.ts";
import { FIRST_ALLOCATED_IDENTITY, FIRST_NODE_LOCAL_IDENTITY, kernelIdentity } from "../../src/policy/desired-state.ts";
import { PROBER_PATH } from "../../src/probe/index.ts";
import { startTestControlPlane } from "../lib/control-plane.ts";
import type { TestControlPlane } from "../lib/control-plane.ts";
import { eventually } from "../lib/eventually.ts";
import { NetnsNode, uniquePinRoot } from "../lib/kernel.ts";
import type { NetnsPod } from "../lib/kernel.ts";

const podServerJs = fileURLToPath(new URL("../../src/devcluster/node-runtime/pod-server.js", import.meta.url));
const PREFIX = `pl-id-${randomBytes(3).toString("hex")}`;
const NODES = [`${PREFIX}-n1`, `${PREFIX}-n2`] as const;
const NS = PREFIX;
const SUBNET = 100 + (randomBytes(1)[0] ?? 0) % 100;
const GRACE_MS = 3_000;
const DENY_TIMEOUT_MS = 1_000;

let cp: TestControlPlane | undefined;
let client: KubeClient;
let node: NetnsNode | undefined;
const agents: Agent[] = [];
let operator: RunningOperator | undefined;
const pods = new Map<string, NetnsPod>();
const logLines: string[] = [];

function logger(component: string) {
  return jsonLogger("debug", { component }, (line) => {
    if ((JSON.parse(line) as { level: number }).level >= LOG_LEVELS.warn) logLines.push(line.trim());
  });
}

function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  return eventually(what, check, { timeoutMs: 60_000, context: () => logLines.slice(-10).join("\n") });
}

async function ensure(path: string, body: unknown): Promise<void> {
  try {
    await client.request("POST", path, { body });
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
  }
}

async function identities(): Promise<PalisadeIdentity[]> {
  return (await client.request<{ items: PalisadeIdentity[] }>("GET", resourcePath(Resources.palisadeIdentities))).items;
}

/** The pod identities of namespace NS, by their pod labels' text. */
async function podIdentities(): Promise<Map<string, PalisadeIdentity>> {
  const out = new Map<string, PalisadeIdentity>();
  for (const obj of await identities()) if (obj.spec.kind === "pod" && obj.spec.namespace === NS) out.set(JSON.stringify(obj.spec.labels), obj);
  return out;
}

function startOperator(identity: string): Promise<RunningOperator> {
  return runOperator({
    kubeconfig: cp?.kubeconfig as string,
    namespace: REPORT_NAMESPACE,
    leaseName: `${PREFIX}-lease`,
    identity,
    metricsPort: 0,
    metricsHost: "127.0.0.1",
    leaderElection: { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 },
    identityGraceMs: GRACE_MS,
    logger: logger(`operator ${identity}`),
  });
}

/** A Pod object on `nodeName` with the addresses of netns pod `name` (created first when `index` is given), Running. Returns its resourceVersion. */
async function addPod(name: string, nodeName: string, labels: Record<string, string>, index?: number): Promise<number> {
  if (index !== undefined) pods.set(name, (node as NetnsNode).addPod(`10.${SUBNET}.78.${index}`, `fd00:${SUBNET}:78::${index}`));
  const netns = pods.get(name) as NetnsPod;
  await waitFor(`pod ${name} created`, async () => {
    await client.request("POST", resourcePath(Resources.pods, { namespace: NS }), {
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: NS, labels },
        spec: { nodeName, containers: [{ name: "main", image: "none", ports: [{ name: "http", containerPort: 80 }] }] },
      },
    });
    return true;
  });
  const pod = await client.request<{ metadata: { resourceVersion: string } }>("PATCH", resourcePath(Resources.pods, { namespace: NS, name, subresource: "status" }), {
    body: { status: { phase: "Running", podIP: netns.ipv4, podIPs: [{ ip: netns.ipv4 }, { ip: netns.ipv6 }] } },
    contentType: PatchType.merge,
  });
  return Number(pod.metadata.resourceVersion);
}

async function deletePod(name: string): Promise<void> {
  await client.request("DELETE", resourcePath(Resources.pods, { namespace: NS, name }), { body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 } });
  await waitFor(`pod ${name} gone`, async () => {
    const list = await client.request<{ items: { metadata: { name: string } }[] }>("GET", resourcePath(Resources.pods, { namespace: NS }));
    return !list.items.some((p) => p.metadata.name === name);
  });
}

/** Starts the pod server (TCP port 80) in pod `name`. */
async function startServer(name: string): Promise<void> {
  const server = (node as NetnsNode).spawnIn(pods.get(name) as NetnsPod, process.execPath, [podServerJs, "80/TCP"]);
  await new Promise<void>((resolve, reject) => {
    server.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve();
    });
    server.once("exit", (code) => reject(new Error(`Cannot start the pod server in ${name}: it exited with ${code}`)));
  });
}

function reachable(from: string, to: string): boolean {
  const src = pods.get(from) as NetnsPod;
  const dst = pods.get(to) as NetnsPod;
  return (node as NetnsNode).execIn(src, process.execPath, [PROBER_PATH, "tcp", dst.ipv4, "80", String(DENY_TIMEOUT_MS)]).status === 0;
}

function reported(nodeName: string, what: string, check: (report: NodeReport) => boolean): Promise<NodeReport> {
  return waitFor(`${nodeName} report: ${what}`, async () => {
    const report = await readNodeReport(client, nodeName);
    return report !== undefined && check(report) ? report : undefined;
  });
}

/** Each agent's kernel ipcache, as `cidr -> identity`. */
function ipcaches(): Map<string, number>[] {
  return agents.map((agent) => new Map(agent.datapath.readState().ipcache.map((e) => [e.cidr, kernelIdentity(e.identity)])));
}

let policyGeneration = 0;

describe("cluster-wide identities: operator and two agents", { timeout: 600_000 }, () => {
  before(async () => {
    cp = await startTestControlPlane("ident");
    client = cp.client;
    for (const name of [REPORT_NAMESPACE, NS]) await ensure(resourcePath(Resources.namespaces), { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    // The pod garbage collector deletes pods bound to a Node that does not exist.
    for (const name of NODES) await ensure(resourcePath(Resources.nodes), { apiVersion: "v1", kind: "Node", metadata: { name } });
    node = new NetnsNode();
    for (const nodeName of NODES) {
      const agent = await Agent.start({
        nodeName,
        client,
        identities: "cluster",
        pinRoot: uniquePinRoot("ident"),
        metricsPort: 0,
        metricsHost: "127.0.0.1",
        logger: logger(`agent ${nodeName}`),
      });
      agents.push(agent);
      await agent.ready;
    }
  });

  after(async () => {
    try {
      await operator?.stop();
      for (const agent of agents) await agent.stop();
    } finally {
      try {
        for (const agent of agents) {
          for (const pod of pods.values()) agent.datapath.detach(pod.ifindex);
          agent.datapath.destroy();
        }
        node?.remove();
      } finally {
        await cp?.stop();
      }
    }
  });

  it("without the operator a peer's identity is pending: not allowed as its labels say, not reported as caught up", async () => {
    await addPod("a", NODES[0], { app: "web" }, 2);
    await startServer("a");
    const rv = await addPod("b", NODES[1], { role: "client" }, 3);
    await waitFor("both agents attached", () => agents.every((agent) => agent.metricsSnapshot().endpoints === 1));
    assert.ok(reachable("b", "a"), "no policy yet: open whatever the identities");
    const policy = await client.request<{ metadata: { generation: number } }>("POST", resourcePath(Resources.networkPolicies, { namespace: NS }), {
      body: {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "web-from-client", namespace: NS },
        spec: { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { role: "client" } } }] }] },
      },
    });
    const [first] = agents;
    await waitFor("agent 1 has pending identities", () => (first?.metricsSnapshot().identitiesPending ?? 0) > 0);
    // b's address has no identity yet, so no podSelector rule matches it once a is isolated.
    await waitFor("the policy isolates a", () => !reachable("b", "a"));
    const report = await readNodeReport(client, NODES[0]);
    assert.ok(report);
    assert.ok(!report.policies.some((p) => p.name === "web-from-client" && p.generation === policy.metadata.generation), "the policy is not reported applied while identities are pending");
    assert.ok(Number(report.podResourceVersion) < rv, `report claims pods up to ${report.podResourceVersion} while identities are pending (b at ${rv})`);
    assert.deepEqual(await identities(), []);
    policyGeneration = policy.metadata.generation;
  });

  it("once the operator creates the identities, the pending peer is enforced and the reports catch up", async () => {
    operator = await startOperator(`${PREFIX}-op1`);
    const list = await waitFor("identities of a and b", async () => {
      const found = await podIdentities();
      return found.has(JSON.stringify({ app: "web" })) && found.has(JSON.stringify({ role: "client" })) ? found : undefined;
    });
    for (const obj of list.values()) {
      assert.ok(Number(obj.metadata.name) >= FIRST_ALLOCATED_IDENTITY);
      assert.equal(obj.spec.namespaceLabels?.["kubernetes.io/metadata.name"], NS);
      assert.deepEqual(obj.spec.namedPorts, [{ name: "http", port: 80, protocol: "TCP" }]);
    }
    // The newest pod change, as `palisade wait` reads it (not the list's own revision, which counts every object).
    const podList = await client.request<{ items: { metadata: { resourceVersion: string } }[] }>("GET", resourcePath(Resources.pods, { namespace: NS }));
    const rv = Math.max(...podList.items.map((p) => Number(p.metadata.resourceVersion)));
    for (const name of NODES) {
      await reported(name, `pods caught up at ${rv}, policy applied`, (r) => Number(r.podResourceVersion) >= rv && r.policies.some((p) => p.name === "web-from-client" && p.generation === policyGeneration));
    }
    assert.ok(reachable("b", "a"), "b carries its identity now");
    for (const agent of agents) assert.equal(agent.metricsSnapshot().identitiesPending, 0);
  });

  it("both agents use the operator's numbers for the same addresses", async () => {
    const byLabels = await podIdentities();
    const a = Number(byLabels.get(JSON.stringify({ app: "web" }))?.metadata.name);
    const b = Number(byLabels.get(JSON.stringify({ role: "client" }))?.metadata.name);
    const [one, two] = await waitFor("both ipcaches hold a and b", () => {
      const maps = ipcaches();
      return maps.every((m) => m.has(`${pods.get("a")?.ipv4}/32`) && m.has(`${pods.get("b")?.ipv4}/32`)) ? maps : undefined;
    });
    const clusterWide = (cache: Map<string, number> | undefined): [string, number][] => [...(cache ?? [])].filter(([, id]) => id < FIRST_NODE_LOCAL_IDENTITY);
    assert.deepEqual(clusterWide(one), clusterWide(two), "the nodes' ipcaches agree on every cluster-wide number");
    assert.equal(one?.get(`${pods.get("a")?.ipv4}/32`), a);
    assert.equal(one?.get(`${pods.get("b")?.ipv6}/128`), b);
    const keys = (await identities()).map((obj) => obj.spec.key);
    assert.equal(new Set(keys).size, keys.length, "one object per key");
  });

  it("keeps every number across an operator restart and gives a new key the lowest free number", async () => {
    const before = new Map((await identities()).map((obj) => [obj.metadata.name, obj.metadata.uid]));
    await operator?.stop();
    operator = await startOperator(`${PREFIX}-op2`);
    await waitFor("the new operator leads", () => operator?.isLeader());
    await addPod("c", NODES[0], { app: "batch" }, 4);
    const c = await waitFor("c's identity", async () => (await podIdentities()).get(JSON.stringify({ app: "batch" })));
    const after = new Map((await identities()).map((obj) => [obj.metadata.name, obj.metadata.uid]));
    for (const [name, uid] of before) assert.equal(after.get(name), uid, `identity ${name} kept`);
    let lowestFree = FIRST_ALLOCATED_IDENTITY;
    while (before.has(String(lowestFree))) lowestFree++;
    assert.equal(Number(c.metadata.name), lowestFree);
    const metrics = await (await fetch(`http://127.0.0.1:${operator.port}/metrics`)).text();
    assert.match(metrics, new RegExp(`^palisade_operator_identities\\{state="in-use"\\} ${after.size}$`, "m"));
  });

  it("collects an unused identity only after the grace period; a key back within it keeps its number", async () => {
    const c = (await podIdentities()).get(JSON.stringify({ app: "batch" })) as PalisadeIdentity;
    await deletePod("c");
    await addPod("c", NODES[0], { app: "batch" });
    const kept = await waitFor("c's identity in use again", async () => (await podIdentities()).get(JSON.stringify({ app: "batch" })));
    assert.equal(kept.metadata.uid, c.metadata.uid, "the flapping pod keeps its identity object");

    await deletePod("c");
    const unusedAt = Date.now();
    await waitFor("c's identity collected", async () => !(await identities()).some((obj) => obj.metadata.uid === c.metadata.uid));
    assert.ok(Date.now() - unusedAt >= GRACE_MS, `collected after ${Date.now() - unusedAt} ms, grace ${GRACE_MS} ms`);
    const remaining = await podIdentities();
    assert.ok(remaining.has(JSON.stringify({ app: "web" })) && remaining.has(JSON.stringify({ role: "client" })), "identities in use stay");
  });

  it("a pod with more labels than a PalisadeIdentity holds is numbered by each node on its own, told so by an Event, and holds no other pod back", async () => {
    const crowded = { role: "client", ...Object.fromEntries(Array.from({ length: 299 }, (_, i) => [`extra-${i}`, "x"])) };
    await addPod("crowded", NODES[0], crowded, 5);
    const rv = await addPod("d", NODES[1], { app: "late" }, 6);
    await waitFor("d numbered after the crowded pod", async () => (await podIdentities()).has(JSON.stringify({ app: "late" })));
    for (const name of NODES) await reported(name, `pods caught up at ${rv}`, (r) => Number(r.podResourceVersion) >= rv);
    const event = await waitFor("a Warning Event about the crowded pod", async () => {
      const list = await client.request<{ items: { type: string; reason: string; note: string; regarding: { name: string } }[] }>("GET", resourcePath(Resources.events, { namespace: NS }));
      return list.items.find((e) => e.regarding.name === "crowded" && e.type === "Warning");
    });
    assert.equal(event.reason, "NodeLocalIdentity");
    assert.match(event.note, /^Cannot give Pod ".*\/crowded" a cluster-wide identity: metadata.labels has 300 labels, more than the 256 a PalisadeIdentity holds/);
    assert.ok(!(await identities()).some((obj) => obj.spec.labels?.["role"] === "client" && obj.spec.labels["extra-0"] !== undefined), "no object for the crowded key");
    for (const cache of ipcaches()) assert.ok((cache.get(`${pods.get("crowded")?.ipv4}/32`) ?? 0) >= FIRST_NODE_LOCAL_IDENTITY, "a number of the node's own");
    for (const agent of agents) assert.equal(agent.metricsSnapshot().identitiesPending, 0);
    assert.ok(reachable("crowded", "a"), "its labels are enforced: role=client may reach a");
  });

  it("a policy's CIDRs are numbered by each node on its own: enforced and reported with no operator, and never an object", async () => {
    await operator?.stop();
    operator = undefined;
    const cidrs = Array.from({ length: 1000 }, (_, i) => `100.${64 + (i >> 8)}.${i & 255}.0/24`);
    const policy = await client.request<{ metadata: { generation: number } }>("POST", resourcePath(Resources.networkPolicies, { namespace: NS }), {
      body: {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "web-from-cidrs", namespace: NS },
        spec: { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"], ingress: [{ from: cidrs.map((cidr) => ({ ipBlock: { cidr } })) }] },
      },
    });
    for (const name of NODES) {
      await reported(name, "web-from-cidrs applied", (r) => r.policies.some((p) => p.name === "web-from-cidrs" && p.generation === policy.metadata.generation));
    }
    for (const cache of ipcaches()) {
      const numbers = cidrs.map((cidr) => cache.get(cidr) ?? 0);
      assert.ok(numbers.every((id) => id >= FIRST_NODE_LOCAL_IDENTITY), "every CIDR has a number of the node's own");
      assert.equal(new Set(numbers).size, cidrs.length, "one number per CIDR");
    }
    assert.deepEqual((await identities()).filter((obj) => obj.spec.kind !== "pod"), [], "no object per CIDR");
    for (const agent of agents) assert.equal(agent.metricsSnapshot().identitiesPending, 0);
    assert.ok(reachable("b", "a"), "web-from-client still admits b beside the CIDRs");

    await client.request("DELETE", resourcePath(Resources.networkPolicies, { namespace: NS, name: "web-from-cidrs" }));
    await waitFor("every node dropped the CIDRs", () => ipcaches().every((cache) => cidrs.every((cidr) => !cache.has(cidr))));
  });
});
