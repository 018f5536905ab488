/**
 * The scale generator at a small size on a 1-node dev cluster (the real
 * operator and agent of `dev up`): about 100 pods, a few of them real on the
 * dev node and the rest bound to fake Nodes, 10 namespaces, 100 policies of
 * both APIs, 1k CIDRs. Checks counts, never timings: every object is in the
 * API; the agent reports every policy at its generation; its policy
 * entries, endpoints and identities are what the project's compiler makes
 * of what the API holds; and real connections between the real pods go as
 * the reference evaluator says. `npm run bench:scale` measures the same
 * world at full size.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { agentMetricsUrl } from "../../src/devcluster/index.ts";
import { KubeClient, resourcePath, Resources } from "../../src/k8s/index.ts";
import { evaluate } from "../../src/policy/index.ts";
import { compileCluster } from "../../bench/lib/compiled-cluster.ts";
import { scrapeMetrics } from "../../bench/lib/dev-cluster.ts";
import { ReportWatch, listsEvery } from "../../bench/lib/report-watch.ts";
import { loadScaleWorld, type LoadedPolicy } from "../../bench/lib/scale-loader.ts";
import { FAKE_NODE_PREFIX, NAMESPACE_PREFIX, scaleSize, scaleWorld, type ScaleWorld } from "../../bench/lib/scale-world.ts";
import { DevCli } from "../lib/dev-cli.ts";
import { testFolder } from "../lib/test-folder.ts";

const cluster = new DevCli(testFolder("scale"));
const SIZE = { ...scaleSize(1 / 100), realPods: 4 };
const CAUGHT_UP_TIMEOUT_MS = 180_000;
let client: KubeClient;
let node: string;
let world: ScaleWorld;
let loaded: LoadedPolicy[];
let reports: ReportWatch | undefined;

async function count(path: string, keep: (item: { metadata: { name: string; namespace?: string } }) => boolean): Promise<number> {
  return (await client.request<{ items: { metadata: { name: string; namespace?: string } }[] }>("GET", path)).items.filter(keep).length;
}

function withTimeout<T>(what: string, promise: Promise<T>, detail: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${CAUGHT_UP_TIMEOUT_MS / 1000} s; ${detail()}`)), CAUGHT_UP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("the scale generator at 1/100 on a dev cluster", { timeout: 900_000 }, () => {
  before(async () => {
    cluster.up(1);
    client = KubeClient.fromFile(cluster.env.KUBECONFIG as string);
    node = cluster.node(1).name;
    world = scaleWorld(SIZE, { seed: 13, realNode: node });
    loaded = await loadScaleWorld(client, world, { concurrency: 8 });
    reports = await ReportWatch.start(client);
  });

  after(async () => {
    await reports?.stop();
    await cluster.folder.remove();
  });

  test("every generated object is in the API", async () => {
    const ours = (item: { metadata: { name: string; namespace?: string } }) => (item.metadata.namespace ?? item.metadata.name).startsWith(NAMESPACE_PREFIX);
    assert.equal(await count(resourcePath(Resources.namespaces), ours), SIZE.namespaces);
    assert.equal(await count(resourcePath(Resources.nodes), (n) => n.metadata.name.startsWith(FAKE_NODE_PREFIX)), SIZE.fakeNodes);
    assert.equal(await count(resourcePath(Resources.pods), ours), SIZE.fakePods + SIZE.realPods);
    const policies = (await count(resourcePath(Resources.networkPolicies), ours)) + (await count(resourcePath(Resources.ebpfNetworkPolicies), ours));
    assert.equal(policies, SIZE.policies);
    assert.equal(loaded.length, SIZE.policies);
    const cidrs = world.policies.reduce((sum, p) => sum + (JSON.stringify(p.spec).match(/"cidr"/g)?.length ?? 0), 0);
    assert.equal(cidrs, SIZE.cidrs);
    const kinds = new Set(world.policies.map((p) => p.kind));
    assert.deepEqual([...kinds].sort(), ["EBPFNetworkPolicy", "NetworkPolicy"]);
  });

  test("the agent catches up: its report lists every policy at its generation, and the latest pods and namespaces", async () => {
    assert.ok(reports);
    // The newest pod's own resourceVersion: a list's is the store's, which other kinds' writes move on.
    const pods = await client.request<{ items: { metadata: { resourceVersion: string } }[] }>("GET", resourcePath(Resources.pods));
    const podsRv = Math.max(...pods.items.map((p) => Number(p.metadata.resourceVersion)));
    const watch = reports;
    const { report } = await withTimeout(
      "the agent's report lists every policy",
      watch.until(node, (r) => listsEvery(r, loaded) && Number(r.podResourceVersion) >= podsRv),
      () => `latest report: ${JSON.stringify({ ...watch.latest(node)?.report, policies: watch.latest(node)?.report.policies.length })}`,
    );
    assert.equal(report.endpoints, SIZE.realPods);
  });

  test("the agent's maps hold what the compiler makes of the API's objects", async () => {
    const expected = await compileCluster(client, node);
    assert.deepEqual(expected.errors, []);
    assert.equal(expected.world.pods.size, SIZE.fakePods + SIZE.realPods);
    const metrics = await scrapeMetrics(`${agentMetricsUrl(cluster.node(1))}/metrics`);
    const agent = {
      policyEntries: metrics.get("palisade_policy_entries"),
      endpoints: metrics.get("palisade_endpoints"),
      identities: metrics.get("palisade_identities"),
    };
    assert.equal(metrics.get("palisade_identities_pending"), 0);
    assert.deepEqual(agent, expected.counts);
    // Every CIDR is an identity of its own on the node, whichever pods its policy selects.
    assert.ok(expected.counts.identities > SIZE.cidrs, `${SIZE.cidrs} CIDR identities or more: ${expected.counts.identities}`);
    assert.ok(expected.counts.policyEntries > 0);
  });

  test("real connections between the real pods go as the reference evaluator says", async () => {
    const { world: api } = await compileCluster(client, node);
    const real = world.pods.filter((p) => p.real).map((p) => `${p.object.metadata.namespace}/${p.object.metadata.name}`);
    const verdicts: string[] = [];
    for (const from of real) {
      for (const to of real) {
        if (from === to) continue;
        const [src, dst] = [api.pods.get(from)?.ips[0], api.pods.get(to)?.ips[0]];
        assert.ok(src && dst, `${from} and ${to} have addresses`);
        for (const port of [80, 8080, 9090]) {
          const expected: boolean = evaluate(api, { src: { ip: src }, dst: { ip: dst }, protocol: "TCP", port }).allowed;
          assert.equal(cluster.reaches(from, to, port), expected, `${from} -> ${to}:${port}`);
          verdicts.push(String(expected));
        }
      }
    }
    // Both verdicts occur, so the comparison could have failed either way.
    assert.deepEqual([...new Set(verdicts)].sort(), ["false", "true"]);
  });
});
