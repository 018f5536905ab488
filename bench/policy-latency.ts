/**
 * Policy write to enforcement: a 2-node dev cluster (control plane, node
 * runtimes, operator and agents) in a temporary folder on free ports, then N
 * spec changes of one EBPFNetworkPolicy, each timed from just before the API
 * write until every node's maps hold it (the `appliedAt` of the reports),
 * until every node's report is seen (the per-node report ConfigMaps, watched,
 * not polled) and until the policy's status says `Programmed` for that
 * generation (what `kubectl wait` sees). The next change starts only then,
 * so each change meets a settled cluster, not the status writes of the one
 * before. Prints the three distributions and where the time went, per change,
 * on the node whose maps took it last: the API write and its watch delivery
 * to that agent, the agent's commit stages (the growth of its
 * `palisade_commit_stage_seconds` sums across the change) and the report's
 * way back; and when the API server answered the write. Run as root after a build:
 * `node dist/bench/policy-latency.js [--changes N] [--json FILE]`; the JSON
 * feeds `npm run bench:plot`.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Informer, PatchType, REPORT_NAME_PREFIX, Resources, findCondition, parseNodeReport, resourcePath } from "../src/k8s/index.ts";
import type { Condition, KubeClient } from "../src/k8s/index.ts";
import { COMMIT_STAGES } from "../src/agent/metrics.ts";
import type { CommitStage } from "../src/agent/metrics.ts";
import { ConditionType } from "../src/operator/policy-status.ts";
import { agentMetrics, onDevCluster } from "./lib/dev-cluster.ts";
import { LATENCY_SPLIT, LATENCY_TARGETS, type LatencyJson, type LatencySample } from "./lib/latency-plot.ts";
import { median, quantile } from "./lib/stats.ts";
import type { V1ConfigMap } from "@kubernetes/client-node";

const { values: args } = parseArgs({ options: { changes: { type: "string", default: "100" }, json: { type: "string" } } });
const CHANGES = Number(args.changes);
const NODES = 2;
const NAMESPACE = "latency";
const POLICY = "moving-port";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

interface MovingPolicy {
  metadata: { name: string; namespace?: string; generation?: number };
  status?: { conditions?: Condition[] };
}

function policy(port: number) {
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: POLICY, namespace: NAMESPACE },
    spec: { selector: { matchLabels: { app: "web" } }, ingress: [{ ports: [{ protocol: "TCP", port }] }] },
  };
}

/** Resolvers of "generation G reached", fed by watch events, so no wait polls. */
class GenerationWaits {
  readonly #reached = new Set<number>();
  readonly #waiting = new Map<number, () => void>();
  reach(generation: number): void {
    this.#reached.add(generation);
    this.#waiting.get(generation)?.();
  }
  wait(generation: number): Promise<void> {
    return this.#reached.has(generation) ? Promise.resolve() : new Promise((resolve) => this.#waiting.set(generation, resolve));
  }
}

async function main({ client }: { client: KubeClient }): Promise<void> {
  const policies = resourcePath(Resources.ebpfNetworkPolicies, { namespace: NAMESPACE });

  // generation -> when each node reports having applied it to its maps.
  const applied = new Map<number, Map<string, number>>();
  const reported = new GenerationWaits();
  const onReport = (cm: V1ConfigMap) => {
    if (!cm.metadata?.name?.startsWith(REPORT_NAME_PREFIX)) return;
    const report = parseNodeReport(cm);
    const entry = report.policies.find((p) => p.kind === "EBPFNetworkPolicy" && p.namespace === NAMESPACE && p.name === POLICY);
    if (!entry) return;
    const nodes = applied.get(entry.generation) ?? new Map<string, number>();
    if (!nodes.has(report.node)) nodes.set(report.node, Date.parse(report.appliedAt));
    applied.set(entry.generation, nodes);
    if (nodes.size >= NODES) reported.reach(entry.generation);
  };
  const programmed = new GenerationWaits();
  const onPolicy = (p: MovingPolicy) => {
    const condition = findCondition(p.status?.conditions, ConditionType.programmed);
    if (p.metadata.name === POLICY && condition?.status === "True" && condition.observedGeneration !== undefined) programmed.reach(condition.observedGeneration);
  };
  const reports = new Informer<V1ConfigMap>({ client, resource: Resources.configMaps, namespace: "palisade-system", logger: quiet });
  reports.addHandlers({ onAdd: onReport, onUpdate: (_, cm) => onReport(cm) });
  const statuses = new Informer<MovingPolicy>({ client, resource: Resources.ebpfNetworkPolicies, namespace: NAMESPACE, logger: quiet });
  statuses.addHandlers({ onAdd: onPolicy, onUpdate: (_, p) => onPolicy(p) });
  for (const informer of [reports, statuses]) informer.start();
  await Promise.all([reports.waitForSync(), statuses.waitForSync()]);

  const created = (await client.request("POST", policies, { body: policy(1000) })) as { metadata: { generation: number } };
  await Promise.all([reported.wait(created.metadata.generation), programmed.wait(created.metadata.generation)]);

  const scrape = await agentMetrics(client);
  const stageSums = async (): Promise<Map<string, Record<CommitStage, number>>> => {
    const nodes = new Map<string, Record<CommitStage, number>>();
    for (const [node, samples] of await scrape()) {
      nodes.set(node, Object.fromEntries(COMMIT_STAGES.map((stage) => [stage, 1000 * (samples.get(`palisade_commit_stage_seconds_sum{stage="${stage}"}`) ?? NaN)])) as Record<CommitStage, number>);
    }
    return nodes;
  };
  const samples: LatencySample[] = [];
  for (let i = 1; i <= CHANGES; i++) {
    const before = await stageSums();
    const startedAt = performance.timeOrigin + performance.now();
    const started = performance.now();
    const patched = (await client.request("PATCH", `${policies}/${POLICY}`, {
      body: { spec: { ingress: [{ ports: [{ protocol: "TCP", port: 1000 + i }] }] } },
      contentType: PatchType.merge,
    })) as { metadata: { generation: number } };
    const answered = performance.now() - started;
    const generation = patched.metadata.generation;
    await reported.wait(generation);
    const reportSeen = performance.now() - started;
    await programmed.wait(generation);
    const statusSeen = performance.now() - started;
    const after = await stageSums();
    // The node whose maps took the change last is the one the write waited for; its agent's stages
    // during the change split its part; what comes before them is the API server's.
    const [lastNode, lastAppliedAt] = [...(applied.get(generation) ?? [])].reduce((a, b) => (b[1] > a[1] ? b : a));
    const inMaps = lastAppliedAt - startedAt;
    const stages = Object.fromEntries(COMMIT_STAGES.map((stage) => [stage, (after.get(lastNode)?.[stage] ?? NaN) - (before.get(lastNode)?.[stage] ?? NaN)])) as Record<CommitStage, number>;
    const agent = stages.wait + stages.sync + stages.compile + stages.write;
    samples.push({ answered, inMaps, reportSeen, statusSeen, split: { delivered: inMaps - agent, ...stages, back: reportSeen - inMaps } });
  }
  await Promise.all([reports.stop(), statuses.stop()]);

  const ms = (v: number) => v.toFixed(1);
  const rows = [
    ["every node's maps hold it", samples.map((s) => s.inMaps)],
    ["every node's report is seen", samples.map((s) => s.reportSeen)],
    ["the policy's status says Programmed", samples.map((s) => s.statusSeen)],
  ] as const;
  process.stdout.write(
    [
      `## Policy write to enforcement on every node (${CHANGES} changes, ${NODES} nodes)`,
      "",
      `Targets to the maps: p50 at most ${LATENCY_TARGETS.p50} ms, p99 at most ${LATENCY_TARGETS.p99} ms.`,
      "",
      "| from the API write until | p50 ms | p90 ms | p99 ms | max ms |",
      "|--------------------------|-------:|-------:|-------:|-------:|",
      ...rows.map(([what, values]) => `| ${what} | ${ms(median(values))} | ${ms(quantile(values, 0.9))} | ${ms(quantile(values, 0.99))} | ${ms(Math.max(...values))} |`),
      "",
      "Where it goes, per change, on the node whose maps took it last:",
      "",
      "| stage | p50 ms | p99 ms |",
      "|-------|-------:|-------:|",
      ...LATENCY_SPLIT.map(({ key, label }) => {
        const values = samples.map((s) => s.split[key]);
        return `| ${label} | ${ms(median(values))} | ${ms(quantile(values, 0.99))} |`;
      }),
      "",
      `The API server answered the write after ${ms(median(samples.map((s) => s.answered)))} ms (p50), ${ms(quantile(samples.map((s) => s.answered), 0.99))} ms (p99).`,
      "",
    ].join("\n"),
  );
  if (args.json !== undefined) {
    const json: LatencyJson = { kind: "policy-latency", date: new Date().toISOString(), nodes: NODES, samples };
    writeFileSync(args.json, `${JSON.stringify(json, null, 1)}\n`);
  }
}

await onDevCluster("latency", NODES, NAMESPACE, main);
