/**
 * Policy write to enforcement: a 2-node dev cluster (control plane, node
 * runtimes, operator, agents) in a temporary folder on free ports, then N
 * spec changes of one EBPFNetworkPolicy, each timed from just before the API
 * write until every node's maps hold it (the `appliedAt` of the reports) and
 * until every node's report is seen (the per-node report ConfigMaps,
 * watched, not polled). Prints both distributions, and where the time went: each agent's commit stages (the
 * growth of its `palisade_commit_stage_seconds` sums across the change) and
 * the rest, the API write and the watch deliveries both ways. Run as root
 * after a build: `node dist/bench/policy-latency.js [N]`.
 */
import { Informer, PatchType, REPORT_NAME_PREFIX, Resources, parseNodeReport, resourcePath } from "../src/k8s/index.ts";
import type { KubeClient } from "../src/k8s/index.ts";
import { COMMIT_STAGES } from "../src/agent/metrics.ts";
import type { CommitStage } from "../src/agent/metrics.ts";
import { agentMetrics, onDevCluster } from "./lib/dev-cluster.ts";
import { median, quantile } from "./lib/stats.ts";
import type { V1ConfigMap } from "@kubernetes/client-node";

const CHANGES = Number(process.argv[2] ?? 100);
const NODES = 2;
const NAMESPACE = "latency";
const POLICY = "moving-port";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function policy(port: number) {
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: POLICY, namespace: NAMESPACE },
    spec: { selector: { matchLabels: { app: "web" } }, ingress: [{ ports: [{ protocol: "TCP", port }] }] },
  };
}

async function main({ client }: { client: KubeClient }): Promise<void> {
  const policies = resourcePath(Resources.ebpfNetworkPolicies, { namespace: NAMESPACE });
  const created = (await client.request("POST", policies, { body: policy(1000) })) as { metadata: { generation: number } };

  // generation -> when each node reports having applied it to its maps; the waiter of the current change.
  const applied = new Map<number, Map<string, number>>();
  let waiter: { generation: number; resolve: () => void } | undefined;
  const onReport = (cm: V1ConfigMap) => {
    if (!cm.metadata?.name?.startsWith(REPORT_NAME_PREFIX)) return;
    const report = parseNodeReport(cm);
    const entry = report.policies.find((p) => p.kind === "EBPFNetworkPolicy" && p.namespace === NAMESPACE && p.name === POLICY);
    if (!entry) return;
    const nodes = applied.get(entry.generation) ?? new Map<string, number>();
    if (!nodes.has(report.node)) nodes.set(report.node, Date.parse(report.appliedAt));
    applied.set(entry.generation, nodes);
    if (waiter && (applied.get(waiter.generation)?.size ?? 0) >= NODES) waiter.resolve();
  };
  const reports = new Informer<V1ConfigMap>({ client, resource: Resources.configMaps, namespace: "palisade-system", logger: quiet });
  reports.addHandlers({ onAdd: onReport, onUpdate: (_, cm) => onReport(cm) });
  reports.start();
  await reports.waitForSync();
  const enforced = (generation: number) =>
    new Promise<void>((resolve) => {
      waiter = { generation, resolve };
      if ((applied.get(generation)?.size ?? 0) >= NODES) resolve();
    });
  await enforced(created.metadata.generation);

  const scrape = await agentMetrics(client);
  const stageSums = async (): Promise<Record<CommitStage, number>[]> =>
    (await scrape()).map((samples) => Object.fromEntries(COMMIT_STAGES.map((stage) => [stage, 1000 * (samples.get(`palisade_commit_stage_seconds_sum{stage="${stage}"}`) ?? NaN)])) as Record<CommitStage, number>);
  const samples: number[] = [];
  const inMaps: number[] = [];
  const stages = new Map<string, number[]>([["API write and watch deliveries", []], ...COMMIT_STAGES.map((stage): [string, number[]] => [stage, []])]);
  for (let i = 1; i <= CHANGES; i++) {
    const before = await stageSums();
    const startedAt = performance.timeOrigin + performance.now();
    const started = performance.now();
    const patched = (await client.request("PATCH", `${policies}/${POLICY}`, {
      body: { spec: { ingress: [{ ports: [{ protocol: "TCP", port: 1000 + i }] }] } },
      contentType: PatchType.merge,
    })) as { metadata: { generation: number } };
    await enforced(patched.metadata.generation);
    const total = performance.now() - started;
    samples.push(total);
    // The reports' appliedAt says when each node's maps took the change (1 ms resolution, same clock).
    inMaps.push(Math.max(...(applied.get(patched.metadata.generation)?.values() ?? [])) - startedAt);
    const after = await stageSums();
    // Per node, the time its commits spent in each stage during this change; the slowest node's agent
    // time is what the write waited for, the rest of the total is the API server and its watches.
    const spans = after.map((node, n) => COMMIT_STAGES.reduce((sum, stage) => sum + node[stage] - (before[n]?.[stage] ?? 0), 0));
    stages.get("API write and watch deliveries")?.push(total - Math.max(...spans));
    after.forEach((node, n) => {
      for (const stage of COMMIT_STAGES) stages.get(stage)?.push(node[stage] - (before[n]?.[stage] ?? 0));
    });
  }
  await reports.stop();

  const ms = (v: number) => v.toFixed(1);
  process.stdout.write(
    [
      `## Policy write to enforcement on every node (${CHANGES} changes, ${NODES} nodes)`,
      "",
      "| from the API write until | p50 ms | p90 ms | p99 ms | max ms |",
      "|--------------------------|-------:|-------:|-------:|-------:|",
      ...([["every node's maps hold it", inMaps], ["every node's report is seen", samples]] as const).map(
        ([what, values]) => `| ${what} | ${ms(median(values))} | ${ms(quantile(values, 0.9))} | ${ms(quantile(values, 0.99))} | ${ms(Math.max(...values))} |`,
      ),
      "",
      "Where it goes (agent stages per node and change; the rest per change):",
      "",
      "| stage | p50 ms | p99 ms |",
      "|-------|-------:|-------:|",
      ...[...stages].map(([stage, values]) => `| ${stage} | ${ms(median(values))} | ${ms(quantile(values, 0.99))} |`),
      "",
    ].join("\n"),
  );
}

await onDevCluster("latency", NODES, NAMESPACE, main);
