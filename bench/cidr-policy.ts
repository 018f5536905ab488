/**
 * `npm run bench:cidrs`: what a large allow-list of CIDRs costs. A 2-node dev
 * cluster (control plane, node runtimes, operator, agents) in a temporary
 * folder, one selected pod per node, then for each size N NetworkPolicies
 * admitting N `/32` ipBlock peers in all, 10k per policy (an object of 100k
 * CIDRs is over the API server's 3 MiB request limit), written at once:
 * timed from just before the API writes until every node's agent reports
 * each policy's generation applied to its maps (the per-node report
 * ConfigMaps, watched), then the same for their deletion (until no node
 * lists any). Beside each, in the same run, the same addresses loaded
 * as one nftables set (`nft -f`) and as an iptables chain
 * (`iptables-restore`), and what the API and the processes hold afterwards:
 * PalisadeIdentity objects of CIDRs, agents' and operator's resident memory, policy
 * map entries. Run as root after a build: `node dist/bench/cidr-policy.js
 * [--sizes 1000,10000,100000] [--runs 3]`.
 *
 * @module
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { V1ConfigMap, V1Node } from "@kubernetes/client-node";
import type { DevLayout } from "../src/devcluster/index.ts";
import { Informer, REPORT_NAME_PREFIX, Resources, parseNodeReport, resourcePath } from "../src/k8s/index.ts";
import type { KubeClient } from "../src/k8s/index.ts";
import type { PalisadeIdentity } from "../src/policy/index.ts";
import { CleanupStack } from "./lib/cleanup.ts";
import { agentMetrics, onDevCluster } from "./lib/dev-cluster.ts";
import { installIptablesChain } from "./lib/iptables-chain.ts";
import type { ForwardFlow } from "./lib/iptables-chain.ts";
import { installNftablesSet } from "./lib/nftables-set.ts";
import { memoryOf } from "./lib/process-memory.ts";
import { formatTable, median, shortCount } from "./lib/stats.ts";
import { peerAddress } from "./lib/synthetic-rules.ts";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "1000,10000,100000" }, runs: { type: "string", default: "3" } } });
const SIZES = (values.sizes ?? "").split(",").map(Number);
const RUNS = Number(values.runs);
const NODES = 2;
const NAMESPACE = "cidrs";
const POLICY_PREFIX = "allow-list-";
/** CIDRs per policy: 10k /32 peers are about 400 kB of JSON, well inside the API server's and etcd's limits. */
const PER_POLICY = 10_000;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
// The baselines' rules sit on interfaces nobody uses: only loading them is timed.
const IDLE_FLOW: ForwardFlow = { inInterface: "plb-idle0", outInterface: "plb-idle1", client: "192.0.2.1", server: "192.0.2.2", port: 80 };

/** The policies of an allow-list of `size` addresses, PER_POLICY each. */
function allowList(size: number) {
  return Array.from({ length: Math.ceil(size / PER_POLICY) }, (_, i) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: `${POLICY_PREFIX}${i}`, namespace: NAMESPACE },
    spec: {
      podSelector: { matchLabels: { app: "web" } },
      policyTypes: ["Ingress"],
      ingress: [
        {
          from: Array.from({ length: Math.min(PER_POLICY, size - i * PER_POLICY) }, (_, j) => ({ ipBlock: { cidr: `${peerAddress(i * PER_POLICY + j)}/32` } })),
          ports: [{ protocol: "TCP", port: 80 }],
        },
      ],
    },
  }));
}

function timed(run: () => void): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

async function main({ layout, client }: { layout: DevLayout; client: KubeClient }): Promise<void> {
  const cleanup = new CleanupStack();
  // Pods are admitted once the namespace's default ServiceAccount exists.
  while (!(await client.request("GET", `${resourcePath(Resources.namespaces)}/${NAMESPACE}/serviceaccounts/default`).then(() => true, () => false))) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const nodes = (await client.request<{ items: V1Node[] }>("GET", resourcePath(Resources.nodes))).items;
  for (const node of nodes) {
    const name = `web-${node.metadata?.name}`;
    await client.request("POST", resourcePath(Resources.pods, { namespace: NAMESPACE }), {
      body: { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: NAMESPACE, labels: { app: "web" } }, spec: { nodeName: node.metadata?.name, containers: [{ name: "web", image: "none", ports: [{ containerPort: 80 }] }] } },
    });
  }
  const scrape = await agentMetrics(client);
  const policyEntries = async (): Promise<number> => [...(await scrape()).values()].reduce((sum, samples) => sum + (samples.get("palisade_policy_entries") ?? NaN), 0);
  const cidrIdentities = async (): Promise<number> =>
    (await client.request<{ items: PalisadeIdentity[] }>("GET", resourcePath(Resources.palisadeIdentities))).items.filter((obj) => obj.spec.kind === "cidr").length;

  // Per node: the generation of each allow-list policy it reports applied, by name.
  const applied = new Map<string, Map<string, number>>();
  let waiter: { done: () => boolean; resolve: () => void } | undefined;
  const onReport = (cm: V1ConfigMap): void => {
    if (!cm.metadata?.name?.startsWith(REPORT_NAME_PREFIX)) return;
    const report = parseNodeReport(cm);
    const listed = report.policies.filter((p) => p.kind === "NetworkPolicy" && p.namespace === NAMESPACE && p.name.startsWith(POLICY_PREFIX));
    applied.set(report.node, new Map(listed.map((p) => [p.name, p.generation])));
    if (waiter?.done()) waiter.resolve();
  };
  const reports = new Informer<V1ConfigMap>({ client, resource: Resources.configMaps, namespace: "palisade-system", logger: quiet });
  reports.addHandlers({ onAdd: onReport, onUpdate: (_, cm) => onReport(cm) });
  reports.start();
  await reports.waitForSync();
  const everyNode = (done: (policies: Map<string, number>) => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => applied.size >= NODES && [...applied.values()].every(done);
      waiter = { done: check, resolve };
      if (check()) resolve();
    });
  const policies = resourcePath(Resources.networkPolicies, { namespace: NAMESPACE });
  const agentPids = readdirSync(layout.run).filter((f) => f.startsWith("agent-") && f.endsWith(".pid")).map((f) => join(layout.run, f));

  const rows: string[][] = [];
  for (const size of SIZES) {
    const apply: number[] = [];
    const remove: number[] = [];
    const nft: number[] = [];
    const iptables: number[] = [];
    let after = { identities: 0, entries: 0, agentRss: 0, agentPeak: 0, operatorRss: 0 };
    for (let run = 0; run < RUNS; run++) {
      process.stderr.write(`bench: ${size} CIDRs, run ${run + 1} of ${RUNS}\n`);
      const started = performance.now();
      const created = await Promise.all(allowList(size).map((body) => client.request<{ metadata: { name: string; generation: number } }>("POST", policies, { body })));
      await everyNode((listed) => created.every(({ metadata }) => listed.get(metadata.name) === metadata.generation));
      apply.push(performance.now() - started);
      const agents = agentPids.map(memoryOf);
      after = {
        identities: await cidrIdentities(),
        entries: await policyEntries(),
        agentRss: Math.max(...agents.map((m) => m.rss)),
        agentPeak: Math.max(...agents.map((m) => m.peak)),
        operatorRss: memoryOf(join(layout.run, "operator.pid")).rss,
      };
      const deleting = performance.now();
      await Promise.all(created.map(({ metadata }) => client.request("DELETE", `${policies}/${metadata.name}`)));
      await everyNode((listed) => listed.size === 0);
      remove.push(performance.now() - deleting);

      const tag = `${process.pid.toString(36)}${run}`;
      nft.push(timed(() => installNftablesSet(cleanup, `plb_cidr_${tag}`, size, IDLE_FLOW, size)()));
      iptables.push(timed(() => installIptablesChain(cleanup, `PLB-CIDR-${tag}`, size, IDLE_FLOW, size)()));
    }
    const ms = (samples: number[]) => median(samples).toFixed(0);
    rows.push([
      shortCount(size),
      ms(apply),
      ms(remove),
      ms(nft),
      ms(iptables),
      String(after.identities),
      shortCount(after.entries),
      after.agentRss.toFixed(0),
      after.agentPeak.toFixed(0),
      after.operatorRss.toFixed(0),
    ]);
  }
  await reports.stop();
  cleanup.dispose();
  process.stdout.write(
    [
      `## N /32 ipBlock peers in NetworkPolicies of ${shortCount(PER_POLICY)} each, ${NODES} dev nodes (median of ${RUNS} runs, ms)`,
      "",
      formatTable(
        ["N", "write → enforced on every node", "delete → gone on every node", "nft -f (one set)", "iptables-restore (chain)", "CIDR identity objects", "policy entries (all nodes)", "agent RSS MB", "agent peak RSS MB", "operator RSS MB"],
        rows,
      ),
      "",
    ].join("\n"),
  );
}

await onDevCluster("cidrs", NODES, NAMESPACE, main);
